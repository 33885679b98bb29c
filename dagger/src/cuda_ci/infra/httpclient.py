"""A small HTTP client, as GitHub documents its API: rate limits are waited out as told, writes are
never blindly repeated, and redirects are followed by hand, never carrying credentials to another origin.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO

from cuda_ci.infra.deadline import Deadline
from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.retry import Retry, Transient, heals
from cuda_ci.infra.secrets import sanitize_url

# RFC 9110's idempotent methods: repeating one after a lost answer changes nothing more.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
DEFAULT_BACKOFF = 0.5  # seconds, times the attempt number
SECONDARY_WAIT = 60.0  # GitHub: "wait for at least one minute", then exponentially longer
DEADLINE = 600.0  # seconds for one exchange, headers and body; the largest asset fits at a slow pace
MAX_WAIT = 3600.0  # a primary rate limit resets within the hour; never wait longer than that


class HttpUnavailable(CudaCiError):
    """The server could not be reached, or kept failing after every retry."""


class WriteFailed(HttpUnavailable):
    """A write got a server error or lost its answer: it may or may not have happened, so it was not repeated."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


class RateLimited(HttpUnavailable):
    """The server asked for a longer wait than this client accepts."""


@dataclass
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None


@dataclass
class Pacer:
    """At least ``interval`` seconds from the end of one request to the start of the next, retries included."""

    interval: float
    sleep: Callable[[float], None] = field(default=time.sleep)
    clock: Callable[[], float] = field(default=time.monotonic)
    last: float | None = field(default=None, init=False)

    def wait(self) -> None:
        if self.last is not None and (left := self.last + self.interval - self.clock()) > 0:
            self.sleep(left)

    def done(self) -> None:
        self.last = self.clock()


@dataclass
class HttpClient:
    """Retries are bounded in count and in each wait; each is reported through ``on_retry``."""

    attempts: int = 5
    backoff: float = field(default_factory=lambda: DEFAULT_BACKOFF)
    timeout: float = 30.0  # each socket operation
    deadline: float = field(default_factory=lambda: DEADLINE)  # one whole exchange (one attempt)
    max_wait: float = MAX_WAIT
    on_retry: Callable[[str], None] = field(default=lambda message: None)
    sleep: Callable[[float], None] = field(default=time.sleep)
    clock: Callable[[], float] = field(default=time.time)

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        ok: frozenset[int] = frozenset({200, 201, 204}),
        allow: frozenset[int] = frozenset(),
        sink: BinaryIO | None = None,
        pacer: Pacer | None = None,
    ) -> Response:
        """Send; return a response whose status is in ``ok`` or ``allow``.

        Rate limits (403/429 with GitHub's signals) are waited out for every method: the server did
        not act on the request. Server errors and dropped connections are retried only for idempotent
        methods; a write raises :class:`WriteFailed` so its caller can look before trying again.
        A 2xx body goes to ``sink`` (streamed) when one is given; ``pacer`` spaces every attempt.
        """
        if body is not None and not any(k.lower() == "content-type" for k in headers or {}):
            raise TypeError("a request body needs a Content-Type")  # never urllib's form-encoded default
        where = f"{method} {sanitize_url(url)}"

        def attempt(number: int) -> Response:
            if pacer is not None:
                pacer.wait()
            try:
                response, error = self._follow(method, url, dict(headers or {}), body, sink)
            finally:
                if pacer is not None:
                    pacer.done()
            if response is not None and (response.status in ok or response.status in allow):
                return response
            raise self._diagnose(where, method, response, error, number)

        retry = Retry(
            attempts=self.attempts,
            backoff=self.backoff,
            max_wait=self.max_wait,
            report=self.on_retry,
            sleep=self.sleep,
        )
        return retry.run(
            where, attempt, give_up=lambda failure, why: HttpUnavailable(f"{where} {why} ({failure.reason})")
        )

    def _diagnose(self, where: str, method: str, response: Response | None, error: str, attempt: int) -> Transient:
        """Why the attempt failed, as a failure that can heal; raise when it must not be repeated."""
        if response is not None:
            limit = rate_limit_wait(response, attempt, self.clock())
            if limit is not None:
                return self._rate_limited(where, response, limit)
            if not heals(response.status):  # a refusal (401, 403 without a rate limit, 404, 422...)
                raise CudaCiError(f"{where} answered {response.status}: {_excerpt(response.body)}")
            error = f"HTTP {response.status}"
        if method not in IDEMPOTENT:
            raise WriteFailed(
                f"{where}: {error}; a write is not repeated blindly (it may have happened)",
                response.status if response is not None else None,
            )
        return Transient(error, wait=_retry_after(response, self.clock()) if response is not None else None)

    def _rate_limited(self, where: str, response: Response, wait: float) -> Transient:
        reason = f"HTTP {response.status}, rate limited"
        if wait > self.max_wait:
            until = datetime.fromtimestamp(self.clock() + wait, UTC).strftime("%H:%M:%S UTC")
            raise RateLimited(
                f"{where}: {reason} until {until} ({wait:.0f} s, longer than the {self.max_wait:.0f} s this run "
                "waits): re-run after that time, or use a token with its own rate limit"
            )
        return Transient(reason, wait=wait)

    def _follow(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, sink: BinaryIO | None
    ) -> tuple[Response | None, str]:
        """One attempt, redirects followed: the same method and body (as GitHub asks), except 303;
        credentials dropped for good once the origin changes; never from https to http."""
        for _ in range(MAX_REDIRECTS + 1):
            response, error = self._send(method, url, headers, body, sink)
            location = response.header("location") if response is not None else None
            if response is None or response.status not in REDIRECTS or not location:
                return response, error
            target = urllib.parse.urljoin(url, location)
            if urllib.parse.urlsplit(url).scheme == "https" and urllib.parse.urlsplit(target).scheme != "https":
                raise CudaCiError(
                    f"{method} {sanitize_url(url)} redirects to {sanitize_url(target)}: refused (not https)"
                )
            if _origin(target) != _origin(url):
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            if response.status == 303:
                method, body = "GET", None
                headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
            url = target
        raise CudaCiError(f"{method} {sanitize_url(url)}: more than {MAX_REDIRECTS} redirects")

    def _send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, sink: BinaryIO | None
    ) -> tuple[Response | None, str]:
        """One request: the response (any status), or None and why the connection failed; raises
        when the whole exchange took longer than ``deadline`` (a write as :class:`WriteFailed`)."""
        request = urllib.request.Request(url, data=body, method=method, headers=dict(headers))
        with Deadline(self.deadline) as deadline:
            opener = urllib.request.build_opener(_NoRedirect, *deadline.handlers())
            try:
                result = self._exchange(opener, request, sink)
            except http.client.HTTPException as error:  # a body cut short (IncompleteRead)
                result = None, f"{type(error).__name__}: {error}"
        if deadline.expired:
            where = f"{method} {sanitize_url(url)}"
            parts = urllib.parse.urlsplit(url)
            host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
            message = (
                f"{where}: {host} did not finish answering within {self.deadline:.0f} s (the overall deadline "
                "of one request, however slowly the answer comes): check that the server is healthy and "
                "reachable at normal speed, then run again"
            )
            raise HttpUnavailable(message) if method in IDEMPOTENT else WriteFailed(message, None)
        return result

    def _exchange(
        self, opener: urllib.request.OpenerDirector, request: urllib.request.Request, sink: BinaryIO | None
    ) -> tuple[Response | None, str]:
        try:
            with opener.open(request, timeout=self.timeout) as raw:
                if sink is None:
                    return Response(raw.status, dict(raw.headers.items()), raw.read()), ""
                sink.seek(0)
                sink.truncate()
                shutil.copyfileobj(raw, sink, 1 << 20)
                return Response(raw.status, dict(raw.headers.items()), b""), ""
        except urllib.error.HTTPError as error:
            with error:
                return Response(error.code, dict(error.headers.items()), error.read()), ""
        except (urllib.error.URLError, OSError) as error:
            return None, f"{type(error).__name__}: {getattr(error, 'reason', error)}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand every redirect back to :meth:`HttpClient._follow`."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def rate_limit_wait(response: Response, attempt: int, now: float) -> float | None:
    """Seconds to wait before repeating a rate-limited request, or None when it is no rate limit.

    GitHub: 403 or 429; ``retry-after`` wins; ``x-ratelimit-remaining: 0`` means wait until
    ``x-ratelimit-reset`` (epoch seconds); a secondary limit without either means at least a minute,
    growing each time. A 403 with none of these is a permission problem and is not retried.
    """
    if response.status not in (403, 429):
        return None
    retry_after = _retry_after(response, now)
    if retry_after is not None:
        return max(retry_after, 0.0)
    reset = response.header("x-ratelimit-reset")
    if response.header("x-ratelimit-remaining") == "0" and reset and reset.isdigit():
        return max(float(reset) - now, 0.0) + 1.0
    if response.status == 429 or "rate limit" in _message(response).lower():
        return SECONDARY_WAIT * 2.0 ** (attempt - 1)
    return None


def _retry_after(response: Response, now: float) -> float | None:
    value = response.header("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(value).timestamp() - now
    except (TypeError, ValueError):
        return None


def _message(response: Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.body.decode("utf-8", "replace")
    return str(data.get("message", "")) if isinstance(data, dict) else ""


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def _excerpt(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip().replace("\n", " ")
    return text[:300] or "(empty body)"
