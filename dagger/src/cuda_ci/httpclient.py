"""A small HTTP client: bounded, visible retries on 5xx, 429 and dropped connections."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cuda_ci.errors import CudaCiError
from cuda_ci.secrets import sanitize_url

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 60.0
DEFAULT_BACKOFF = 0.5  # seconds, times the attempt number


class HttpUnavailable(CudaCiError):
    """The server could not be reached, or kept failing after every retry."""


@dataclass
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None


@dataclass
class HttpClient:
    """Retries are bounded in count and in total sleep; each is reported through ``on_retry``."""

    attempts: int = 5
    backoff: float = field(default_factory=lambda: DEFAULT_BACKOFF)
    timeout: float = 30.0
    on_retry: Callable[[str], None] = field(default=lambda message: None)
    sleep: Callable[[float], None] = field(default=time.sleep)

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        ok: frozenset[int] = frozenset({200, 201, 204}),
        allow: frozenset[int] = frozenset(),
        follow_redirects: bool = True,
    ) -> Response:
        """Send; return a response whose status is in ``ok`` or ``allow``; retry what is worth it."""
        last = ""
        for attempt in range(1, self.attempts + 1):
            response, error = self._send(method, url, headers, body, follow_redirects)
            if response is None:
                last, delay = error, self.backoff * attempt
            elif response.status in ok or response.status in allow:
                return response
            elif response.status in RETRY_STATUSES:
                last = f"HTTP {response.status}"
                delay = _retry_after(response.headers, self.backoff * attempt)
            else:
                raise CudaCiError(f"{method} {sanitize_url(url)} answered {response.status}: {_excerpt(response.body)}")
            if attempt < self.attempts:
                self.on_retry(
                    f"{method} {sanitize_url(url)}: {last}; retry {attempt} of {self.attempts - 1} in {delay:.1f} s"
                )
                self.sleep(delay)
        raise HttpUnavailable(f"{method} {sanitize_url(url)} failed after {self.attempts} attempts ({last})")

    def _send(
        self, method: str, url: str, headers: Mapping[str, str] | None, body: bytes | None, follow_redirects: bool
    ) -> tuple[Response | None, str]:
        """One attempt: the response (any status), or None and why the connection failed."""
        request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
        opener = urllib.request.build_opener() if follow_redirects else urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=self.timeout) as raw:
                return Response(raw.status, dict(raw.headers.items()), raw.read()), ""
        except urllib.error.HTTPError as error:
            return Response(error.code, dict(error.headers.items()), error.read()), ""
        except (urllib.error.URLError, OSError) as error:
            return None, f"{type(error).__name__}: {getattr(error, 'reason', error)}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand redirects back to the caller (so credentials never follow them to another host)."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _retry_after(headers: Mapping[str, str], default: float) -> float:
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return min(float(value), MAX_RETRY_AFTER) if value is not None else default
    except ValueError:
        return default


def _excerpt(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip().replace("\n", " ")
    return text[:300] or "(empty body)"
