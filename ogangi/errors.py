"""Every error the Ogangi client raises, and what the caller may do about it.

```
OgangiError                       base; ``kind`` is "permanent", "retryable" or "ambiguous"
├── InvalidParameter              permanent: refused locally, no request was made
├── ProviderError                 permanent: the provider answered status ERROR
│   ├── BadSignature              permanent: status BAD_SIGNATURE (wrong keys or instance)
│   └── HttpError                 permanent: HTTP 3xx/4xx other than 429 (wrong base URL or route)
├── TransientError                retryable: connection refused, HTTP 500/503, nothing accepted
│   └── RateLimited               retryable: HTTP 429; ``retry_after`` seconds when given
└── AmbiguousError                ambiguous: the request went out and no usable answer came
                                  (timeout, dropped connection, 502/504 on a POST or DELETE)
    └── MalformedResponse         ambiguous: 2xx with a body that is not the API's XML
```

"Ambiguous" means the provider may have acted: a send or a create must not be repeated blindly.
No error text ever contains the private key: messages are built from statuses and descriptions only.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["permanent", "retryable", "ambiguous"]


class OgangiError(Exception):
    kind: Kind = "permanent"

    def __init__(self, message: str, *, route: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.route = route

    @property
    def retryable(self) -> bool:
        return self.kind == "retryable"

    @property
    def ambiguous(self) -> bool:
        return self.kind == "ambiguous"

    def __str__(self) -> str:
        return f"{self.route}: {self.message}" if self.route else self.message


class InvalidParameter(OgangiError, ValueError):
    kind: Kind = "permanent"


class ProviderError(OgangiError):
    """The provider answered, and said no (status ERROR)."""

    kind: Kind = "permanent"

    def __init__(
        self,
        message: str,
        *,
        route: str | None = None,
        status: str = "ERROR",
        description: str = "",
        detail: str | None = None,
    ) -> None:
        super().__init__(message, route=route)
        self.status = status
        self.description = description
        self.detail = detail


class BadSignature(ProviderError):
    def __init__(self, *, route: str | None = None, description: str = "") -> None:
        super().__init__(
            "signature rejected by the provider: check OGANGI_PRIVATE_KEY "
            "(and OGANGI_PUBLIC_KEY / OGANGI_INSTANCE_ID)",
            route=route,
            status="BAD_SIGNATURE",
            description=description,
        )


class HttpError(ProviderError):
    """A non-2xx answer that no retry will fix: API outcomes always come as 200 + XML (§4)."""

    def __init__(self, http_status: int, *, route: str | None = None) -> None:
        hint = "; check OGANGI_BASE_URL" if http_status in (404, 405) else ""
        super().__init__(
            f"provider answered HTTP {http_status}{hint}",
            route=route,
            status=f"HTTP {http_status}",
        )
        self.http_status = http_status


class TransientError(OgangiError):
    kind: Kind = "retryable"

    def __init__(self, message: str, *, route: str | None = None, http_status: int | None = None):
        super().__init__(message, route=route)
        self.http_status = http_status


class RateLimited(TransientError):
    def __init__(self, *, route: str | None = None, retry_after: float | None = None) -> None:
        wait = f"; retry after {retry_after:g}s" if retry_after is not None else ""
        super().__init__(f"rate limited by the provider (HTTP 429){wait}", route=route, http_status=429)
        self.retry_after = retry_after


class AmbiguousError(OgangiError):
    kind: Kind = "ambiguous"


class MalformedResponse(AmbiguousError):
    pass
