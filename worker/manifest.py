"""What a producer asks for: the settings of one job, from a bucket manifest or an HTTP request.

``inbox/spring-sale.xlsx`` takes its settings from ``inbox/spring-sale.json``::

    {"text": "Hi {0}, 20% off today", "from": "55500", "region": "US",
     "phone_column": "phone", "chunk_size": 5000, "kind": "send", "at": "2026-12-01T09:00:00Z"}

Unknown keys are refused (a typo such as ``"txt"`` must not send an empty campaign). The HTTP
intake validates its form fields and JSON bodies with the same model, so both ways in accept
the same words.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal, TypedDict
from zoneinfo import ZoneInfo

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from jobs.payloads import SendOptions

__all__ = ["Manifest", "ManifestError", "parse_manifest", "resolve"]

#: Keys a manifest may hold, for error messages.
KEYS = ("text", "from", "region", "phone_column", "chunk_size", "at", "kind", "campaign",
        "resend_unknown")  # fmt: skip


class ManifestError(ValueError):
    """The settings are missing or wrong; the message says which and how to fix it."""


class BroadcastOptions(TypedDict):
    at: datetime | None
    campaign: str | None
    sender: str | None
    region: str | None
    phone_column: str | None


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    kind: Literal["send", "broadcast"] = "send"
    text: str | None = Field(default=None, min_length=1)
    sender: str | None = Field(default=None, alias="from", min_length=1)
    region: str | None = Field(default=None, min_length=2, max_length=2)
    phone_column: str | None = None
    chunk_size: int | None = Field(default=None, ge=1, le=100_000)
    #: Sends: the job starts then. Broadcasts: the provider starts the broadcast then.
    at: datetime | None = Field(default=None, validation_alias=AliasChoices("at", "schedule"))
    campaign: str | None = None
    resend_unknown: bool = False

    @field_validator("phone_column", mode="before")
    @classmethod
    def _column_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("region")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value else value

    def with_default_text(self, default: str | None) -> Manifest:
        return self if self.text or not default else self.model_copy(update={"text": default})

    def starts_at(self, zone: str) -> datetime | None:
        """``at`` as an aware time: one without a zone is in ``zone`` (SMSPIPE_TIMEZONE)."""
        if self.at is None or self.at.tzinfo is not None:
            return self.at
        return self.at.replace(tzinfo=ZoneInfo(zone))

    def broadcast_options(self) -> BroadcastOptions:
        """The producer API's keyword arguments for a broadcast of this manifest."""
        return {
            "at": self.at,
            "campaign": self.campaign,
            "sender": self.sender,
            "region": self.region,
            "phone_column": self.phone_column,
        }

    def send_options(self) -> SendOptions:
        """The options that make a send job (and its id); ``text`` must be set by now."""
        if not self.text:
            raise ManifestError("'text' is missing")
        return SendOptions(
            text=self.text,
            sender=self.sender,
            region=self.region,
            phone_column=self.phone_column,
            chunk_size=self.chunk_size,
            resend_unknown=self.resend_unknown,
        )


def parse_manifest(data: bytes, name: str) -> Manifest:
    """A manifest's bytes -> Manifest, or ManifestError naming every problem."""
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ManifestError(f'{name} must hold a JSON object, like {{"text": "Hi {{0}}"}}')
    return validate(document, name)


def validate(document: dict[str, object], name: str) -> Manifest:
    try:
        return Manifest.model_validate(document)
    except ValidationError as exc:
        raise ManifestError(f"{name}: {describe(exc)}") from None


def describe(exc: ValidationError) -> str:
    """Pydantic's errors as one line a person can act on: ``colour: unknown key; ...``."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "settings"
        if error["type"] == "extra_forbidden":
            problems.append(f"{where}: unknown key (known: {', '.join(KEYS)})")
        else:
            problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


def resolve(manifest: Manifest | None, default_text: str | None, source: str) -> Manifest:
    """The settings a job runs with: the manifest's, completed by the configured defaults."""
    settings = (manifest or Manifest()).with_default_text(default_text)
    if not settings.text:
        if manifest is None:
            raise ManifestError(
                f"no settings for {source}: its manifest ({manifest_name(source)}) did not arrive "
                "and SMSPIPE_DEFAULT_TEXT is not set; a manifest needs at least "
                '{"text": "your message"}'
            )
        raise ManifestError(
            f"{manifest_name(source)} has no 'text' and SMSPIPE_DEFAULT_TEXT is not set"
        )
    return settings


def manifest_name(data_name: str) -> str:
    """``inbox/spring-sale.xlsx`` -> ``inbox/spring-sale.json``."""
    head, _, base = data_name.rpartition("/")
    stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    return f"{head}/{stem}.json" if head else f"{stem}.json"
