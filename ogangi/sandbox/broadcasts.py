"""Broadcasts: the §5.5 state machine, with progress computed from the clock when looked at.

No background task: a SENDING broadcast has sent ``base + (now - since) * rate`` messages
(capped), and every read first brings it up to ``now``. Messages it "sends" on the way are
handed to ``emit`` (the ledger), stamped with the moment they went out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ogangi.models import BroadcastStatus as S

#: Transitions of §5.5: action -> states it may start from.
SUSPENDABLE = frozenset({S.SENDING, S.SCHEDULED})
RESUMABLE = frozenset({S.SUSPENDED, S.FORCED_SUSPENDED})
STOPPABLE = frozenset({S.SENDING, S.SCHEDULED, S.SUSPENDED, S.FORCED_SUSPENDED})


class BroadcastError(Exception):
    """The call is refused (ERROR); the message says why and nothing changed."""


@dataclass(frozen=True, slots=True)
class Recipient:
    mobile: str
    text: str
    encoding: str
    timezone: str | None


@dataclass(frozen=True)
class BroadcastSpec:
    """What createBroadcastFromJson asks for, validated; ``start_at`` None means now."""

    owner: str
    sender: str
    shortcode_param: str
    shortcode_ignore: bool
    campaign: str | None
    text: str
    recipients: Sequence[Recipient]
    start_at: float | None
    request_id: str


@dataclass
class Broadcast:
    id: int
    instance_id: int
    spec: BroadcastSpec
    start_at: float
    status: S
    force_at: int | None
    sent: int = 0
    end_at: float | None = None
    # The current SENDING stretch: since when, from which count, at what rate.
    since: float = 0.0
    base: int = 0
    rate: float = 0.0

    @property
    def expected(self) -> int:
        return len(self.spec.recipients)


#: emit(broadcast, recipients just sent, when the last of them went out)
Emit = Callable[[Broadcast, Sequence[Recipient], float], None]


class BroadcastBook:
    """All broadcasts of one sandbox; ids are 1, 2, 3... across its workspaces."""

    def __init__(
        self,
        emit: Emit,
        rate: Callable[[], float],
        force_after: Callable[[], int | None],
    ) -> None:
        self._emit = emit
        self._rate = rate
        self._force_after = force_after
        self._items: dict[int, Broadcast] = {}
        self._next_id = 1

    def reset(self) -> None:
        self._items.clear()
        self._next_id = 1

    # -- lookups --------------------------------------------------------------------------

    def get(self, instance_id: int, broadcast_id: int, now: float) -> Broadcast:
        item = self._items.get(broadcast_id)
        if item is None or item.instance_id != instance_id:
            raise BroadcastError(f"no broadcast with id {broadcast_id}")
        self._advance(item, now)
        return item

    def all(self) -> list[Broadcast]:
        return list(self._items.values())

    def advance_all(self, now: float) -> None:
        for item in self._items.values():
            self._advance(item, now)

    # -- create / edit ----------------------------------------------------------------------

    def create(self, instance_id: int, spec: BroadcastSpec, now: float) -> Broadcast:
        item = Broadcast(
            id=self._next_id,
            instance_id=instance_id,
            spec=spec,
            start_at=now,
            status=S.SENDING,
            force_at=self._force_after(),
        )
        self._next_id += 1
        self._items[item.id] = item
        self._schedule(item, now)
        return item

    def edit(
        self, instance_id: int, broadcast_id: int, spec: BroadcastSpec, now: float
    ) -> Broadcast:
        """Replace recipients and settings; counting restarts on the new list.

        A suspended broadcast stays suspended (the operator paused it); otherwise the new start
        date decides between SCHEDULED and SENDING.
        """
        item = self.get(instance_id, broadcast_id, now)
        if item.status.final:
            raise BroadcastError(
                f"broadcast {broadcast_id} is {item.status.value} and cannot be edited"
            )
        item.spec = spec
        item.sent = 0
        item.end_at = None
        item.force_at = self._force_after()
        if item.status in RESUMABLE:
            item.start_at = max(now, spec.start_at or now)
        else:
            self._schedule(item, now)
        return item

    def _schedule(self, item: Broadcast, now: float) -> None:
        start = item.spec.start_at
        if start is not None and start > now:
            item.start_at = start
            item.status = S.SCHEDULED
        else:
            item.start_at = now
            self._begin_sending(item, now)
            self._advance(item, now)

    def _begin_sending(self, item: Broadcast, since: float) -> None:
        item.status = S.SENDING
        item.since = since
        item.base = item.sent
        item.rate = self._rate()

    # -- §5.5 transitions -------------------------------------------------------------------

    def suspend(self, instance_id: int, broadcast_id: int, now: float) -> Broadcast:
        item = self._expect(instance_id, broadcast_id, now, SUSPENDABLE, "suspended")
        item.status = S.SUSPENDED
        return item

    def force_suspend(self, broadcast_id: int, now: float) -> Broadcast:
        """What the provider does on its own (e.g. out of funds); reachable only via control API."""
        item = self._items.get(broadcast_id)
        if item is None:
            raise BroadcastError(f"no broadcast with id {broadcast_id}")
        item = self._expect(item.instance_id, broadcast_id, now, SUSPENDABLE, "force-suspended")
        item.status = S.FORCED_SUSPENDED
        return item

    def resume(self, instance_id: int, broadcast_id: int, now: float) -> Broadcast:
        item = self._expect(instance_id, broadcast_id, now, RESUMABLE, "resumed")
        if item.start_at > now:
            item.status = S.SCHEDULED
        else:
            self._begin_sending(item, now)
            self._advance(item, now)
        return item

    def stop(self, instance_id: int, broadcast_id: int, now: float) -> Broadcast:
        item = self._expect(instance_id, broadcast_id, now, STOPPABLE, "stopped")
        item.status = S.ABORTED
        item.end_at = now
        return item

    def delete(self, instance_id: int, broadcast_id: int, now: float) -> Broadcast:
        """Remove in any state; whatever was sent up to ``now`` stays sent."""
        item = self.get(instance_id, broadcast_id, now)
        if not item.status.final:
            item.status = S.ABORTED
            item.end_at = now
        del self._items[broadcast_id]
        return item

    def _expect(
        self, instance_id: int, broadcast_id: int, now: float, allowed: frozenset[S], verb: str
    ) -> Broadcast:
        item = self.get(instance_id, broadcast_id, now)
        if item.status not in allowed:
            raise BroadcastError(
                f"broadcast {broadcast_id} is {item.status.value} and cannot be {verb}"
            )
        return item

    # -- progress ---------------------------------------------------------------------------

    def _advance(self, item: Broadcast, now: float) -> None:
        if item.status is S.SCHEDULED and now >= item.start_at:
            self._begin_sending(item, item.start_at)
        if item.status is not S.SENDING:
            return
        stop = item.expected
        forced = item.force_at is not None and item.force_at < stop
        if forced:
            assert item.force_at is not None
            stop = max(item.force_at, item.sent)
        reached = item.base + int((now - item.since) * item.rate)
        at = now
        if reached >= stop:
            reached = stop
            at = min(now, item.since + (stop - item.base) / item.rate)
            if forced:
                item.status = S.FORCED_SUSPENDED
                item.force_at = None
            else:
                item.status = S.DONE
                item.end_at = at
        if reached > item.sent:
            batch = item.spec.recipients[item.sent : reached]
            item.sent = reached
            self._emit(item, batch, at)
