"""The arq worker: our job functions, JSON serialization, timeouts short enough that a chunk
held by a dead worker is retried within a couple of minutes, and Redis retries that ride out a
Redis restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from typing import Any

import structlog
from arq import Worker
from arq.connections import RedisSettings, create_pool
from arq.worker import func
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jobs import phones
from jobs.broadcast_jobs import create_broadcast, track_broadcast
from jobs.send import (
    FINALIZE_TRIES,
    PREPARE_TRIES,
    finalize,
    prepare_send,
    send_chunk,
    send_chunk_tries,
)
from worker.memory import use_lean_memory_pool
from worker.runtime import CTX_KEY, Runtime
from worker.settings import Settings

QUEUE = "smspipe:queue"
REDIS_RETRY_SECONDS = 0.5

log = structlog.get_logger("smspipe.worker")


def dumps(value: Any) -> bytes:
    # default=repr: arq stores a failed job's exception as its result; keep its text, not a pickle.
    return json.dumps(value, separators=(",", ":"), default=repr).encode()


def loads(data: bytes) -> Any:
    return json.loads(data)


def redis_settings(url: str) -> RedisSettings:
    """Connection settings whose commands retry for ~30 s while Redis restarts."""
    settings = RedisSettings.from_dsn(url)
    settings.conn_retries = 30
    settings.conn_retry_delay = 1
    settings.retry_on_error = [RedisConnectionError, RedisTimeoutError, ConnectionError, OSError]
    settings.retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=60)
    return settings


async def open_pool(url: str) -> Any:
    return await create_pool(
        redis_settings(url), job_serializer=dumps, job_deserializer=loads, default_queue_name=QUEUE
    )


class ResilientWorker(Worker):
    """arq's worker exits on the first Redis error, even one in a finished job's bookkeeping;
    ours logs it and keeps polling until Redis is back. A job whose result could not be
    recorded runs again once its in-progress key expires, and every job here is idempotent.
    (``_poll_iteration`` is arq-internal: arq is pinned to 0.28.)
    """

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except (RedisError, ConnectionError, OSError) as exc:
            log.warning("redis unavailable; the worker keeps trying", error=str(exc))
            await asyncio.sleep(REDIS_RETRY_SECONDS)
            self._recount_slots()

    def _recount_slots(self) -> None:
        """An error inside arq's ``start_jobs`` leaks the slot it took for the job it was
        starting; left alone, a few Redis blips and the worker takes no more jobs. Slots are
        recounted from what really runs (every finished task's callback has run by now)."""
        running = sum(not task.done() for task in self.tasks.values())
        self.job_counter = running
        # Unbounded: the running tasks' completions release into it, up to max_jobs + 1 again.
        self.sem = asyncio.Semaphore(self.max_jobs + 1 - running)  # type: ignore[assignment]

    async def close(self) -> None:
        """arq's close, except that a job it has to cancel does not raise out of it: arq
        gathers the cancelled tasks without ``return_exceptions``, so its caller got a
        CancelledError and the shutdown hook (our runtime's connections) never ran."""
        if not self._handle_signals:
            self.handle_sig(signal.SIGUSR1)  # cancels what still runs, as arq's close does
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        self.tasks.clear()
        await super().close()

    async def drain(self, timeout: float) -> None:
        """Stop taking jobs and give those in hand up to ``timeout`` seconds to end (a job
        cancelled afterwards by ``close`` runs again at the next worker, as after SIGTERM)."""
        if self.main_task is not None:
            self.main_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.main_task
        running = [task for task in self.tasks.values() if not task.done()]
        if running:
            await asyncio.wait(running, timeout=timeout)


def build_worker(
    settings: Settings,
    redis_url: str,
    *,
    burst: bool = False,
    handle_signals: bool = True,
    poll_delay: float = 0.02,  # an idle worker starts a job within ~20 ms of its enqueue
) -> ResilientWorker:
    timeout = settings.smspipe_job_timeout
    max_tries = settings.smspipe_max_tries
    use_lean_memory_pool()

    async def startup(ctx: dict[str, Any]) -> None:
        ctx[CTX_KEY] = await Runtime.start(settings, ctx["redis"])
        # Off the loop and not awaited: the worker takes jobs at once, the first big list
        # then finds the phone tables built.
        ctx["warm_up"] = asyncio.create_task(asyncio.to_thread(phones.warm_up))

    async def shutdown(ctx: dict[str, Any]) -> None:
        runtime = ctx.get(CTX_KEY)
        if runtime is not None:
            await runtime.close()

    return ResilientWorker(
        functions=[
            func(prepare_send, name="prepare_send", timeout=timeout, max_tries=PREPARE_TRIES),
            func(
                send_chunk, name="send_chunk", timeout=timeout, max_tries=send_chunk_tries(settings)
            ),
            func(finalize, name="finalize", timeout=timeout, max_tries=FINALIZE_TRIES),
            func(
                create_broadcast, name="create_broadcast", timeout=timeout, max_tries=max_tries + 5
            ),
            # Each run is short (a few getBroadcast calls) and enqueues the next under a new id.
            func(track_broadcast, name="track_broadcast", timeout=timeout, max_tries=3),
        ],
        queue_name=QUEUE,
        redis_settings=redis_settings(redis_url),
        on_startup=startup,
        on_shutdown=shutdown,
        burst=burst,
        handle_signals=handle_signals,
        # SIGTERM: stop taking jobs, let chunks in flight finish, then cancel what is left.
        job_completion_wait=int(min(timeout, 30)),
        # A few more than the calls in flight (prepare and finalize run beside them); a larger
        # number lets the first worker to poll take most of a job's chunks from the others.
        max_jobs=settings.smspipe_concurrency + 2,
        job_timeout=timeout,
        poll_delay=poll_delay,
        keep_result=3600,
        job_serializer=dumps,
        job_deserializer=loads,
        max_tries=max_tries,
    )
