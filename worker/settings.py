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
    #: Requests in flight per worker process, on top of the shared rate limit.
    smspipe_concurrency: int = 8
    #: Longest a job may run. arq re-runs the job of a worker that died once this (+10 s) has
    #: passed, so it is kept short: a chunk is one HTTP call.
    smspipe_job_timeout: float = 120.0
    #: Tries of one chunk through transient provider trouble before its rows are FAILED.
    smspipe_max_tries: int = 10
    smspipe_timezone: str = "UTC"
    smspipe_api_token: SecretStr | None = None

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
