"""Configuration from the environment (names are a public interface: see docs/design.md).

Unset provider settings mean "use the bundled sandbox"; an unset ``REDIS_URL`` means "use the
embedded redis-server". Secrets are ``SecretStr`` so they print as ``**********``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ogangi.models import Credentials
from ogangi.sandbox.config import (
    SANDBOX_INSTANCE_ID,
    SANDBOX_PRIVATE_KEY,
    SANDBOX_PUBLIC_KEY,
    SANDBOX_USERNAME,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    ogangi_base_url: str | None = None
    ogangi_instance_id: int | None = None
    ogangi_public_key: str | None = None
    ogangi_private_key: SecretStr | None = None
    ogangi_username: str | None = None
    ogangi_shortcode: str | None = None
    ogangi_timeout_seconds: float = 30.0

    redis_url: str | None = None
    smspipe_home: Path = Field(default=Path(".smspipe"))
    smspipe_bucket: str = "bucket"
    smspipe_default_region: str = "US"
    smspipe_max_requests_per_second: float | None = None
    smspipe_max_messages_per_second: float | None = None
    smspipe_chunk_size: int = 10_000
    #: Seconds between a rate-limit slot and the provider counting the request that the
    #: shared limit absorbs (scheduling and network jitter); it costs margin/(1+margin) of
    #: the limit. Raise it for a distant provider.
    smspipe_rate_margin: float = Field(default=0.04, ge=0)
    #: Requests in flight per worker process, on top of the shared rate limit.
    smspipe_concurrency: int = 4
    #: Longest a job may run. arq re-runs the job of a worker that died once this (+10 s) has
    #: passed, so it is kept short: a chunk is one HTTP call.
    smspipe_job_timeout: float = 120.0
    #: Tries of one chunk through transient provider trouble before its rows are FAILED.
    smspipe_max_tries: int = 10
    smspipe_timezone: str = "UTC"
    smspipe_api_token: SecretStr | None = None
    #: Zone the provider reads broadcast start dates in (``dd-MM-yyyy HH:mm`` carries none).
    ogangi_timezone: str = "UTC"
    #: Most recipients in one broadcast; a longer list becomes several (the sandbox's cap).
    smspipe_broadcast_cap: int = Field(default=100_000, ge=1)
    #: getBroadcast polling: the first delay, growing x1.5 while nothing changes, up to the max.
    smspipe_broadcast_poll_min: float = Field(default=0.5, gt=0)
    smspipe_broadcast_poll_max: float = Field(default=30.0, gt=0)
    #: Seconds a broadcast may stay FORCED_SUSPENDED (suspended by the provider) before its
    #: job gives up on it and ends failed.
    smspipe_broadcast_forced_deadline: float = Field(default=3600.0, ge=0)

    # --- producers and operations (watcher, intake, metrics) ---
    #: Message text for a file dropped into inbox/ without a manifest (none: such files fail).
    smspipe_default_text: str | None = None
    #: Seconds between two looks at inbox/; a file is taken once two looks agree on it.
    smspipe_watch_poll_seconds: float = Field(default=1.0, gt=0)
    #: How long a data file without a manifest waits for one before defaults apply (or it fails).
    smspipe_watch_manifest_wait_seconds: float = Field(default=10.0, ge=0)
    smspipe_intake_host: str = "127.0.0.1"
    smspipe_intake_port: int = 8080
    smspipe_max_upload_mb: float = Field(default=50.0, gt=0)
    #: Where ``smspipe worker --metrics-port`` serves /metrics (loopback unless told otherwise).
    smspipe_metrics_host: str = "127.0.0.1"
    smspipe_metrics_port: int | None = None

    @property
    def uses_sandbox(self) -> bool:
        return not self.ogangi_base_url

    def credentials(self) -> Credentials:
        """The configured workspace, or the sandbox's defaults for whatever is unset."""
        private = self.ogangi_private_key.get_secret_value() if self.ogangi_private_key else None
        if not self.uses_sandbox:
            missing = [
                name
                for name, value in (
                    ("OGANGI_INSTANCE_ID", self.ogangi_instance_id),
                    ("OGANGI_PUBLIC_KEY", self.ogangi_public_key),
                    ("OGANGI_PRIVATE_KEY", private),
                    ("OGANGI_USERNAME", self.ogangi_username),
                )
                if not value
            ]
            if missing:
                raise ConfigError(
                    f"OGANGI_BASE_URL is set but {', '.join(missing)} "
                    f"{'is' if len(missing) == 1 else 'are'} not"
                )
        return Credentials(
            instance_id=self.ogangi_instance_id or SANDBOX_INSTANCE_ID,
            public_key=self.ogangi_public_key or SANDBOX_PUBLIC_KEY,
            private_key=private or SANDBOX_PRIVATE_KEY,
            username=self.ogangi_username or SANDBOX_USERNAME,
        )


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the variable."""
