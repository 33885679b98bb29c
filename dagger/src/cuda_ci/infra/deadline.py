"""An overall deadline for one HTTP exchange, whatever pace the server keeps.

A socket timeout bounds each read, not the request: a server that answers 200 and then sends a
byte every few seconds holds a plain ``urlopen`` for as long as it likes. :class:`Deadline` watches
the sockets an exchange opens and shuts them down when its time is up, which ends any read blocked
on them at once; the caller then reports the deadline, not a broken connection.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import urllib.request
from collections.abc import Callable
from types import TracebackType
from typing import Any


class Deadline:
    """Shuts down every socket it watches once ``seconds`` have passed since ``with`` began."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def __enter__(self) -> Deadline:
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def handlers(self) -> list[urllib.request.BaseHandler]:
        """urllib handlers (for ``build_opener``) whose connections this deadline watches."""
        return [_HTTPHandler(self), _HTTPSHandler(self)]


def _shut(sock: socket.socket) -> None:
    # The plain socket's shutdown (also for TLS): a read blocked in another thread returns at once.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watched(http.client.HTTPConnection):
    """A connection whose socket its :class:`Deadline` watches from the moment it is connected."""

    deadline: Deadline

    def connect(self) -> None:
        super().connect()
        self.deadline.watch(self.sock)


class _WatchedHTTPS(_Watched, http.client.HTTPSConnection):
    pass


def _connections(kind: type[_Watched], deadline: Deadline) -> Callable[..., http.client.HTTPConnection]:
    def connection(host: str, /, **options: Any) -> http.client.HTTPConnection:
        made = kind(host, **options)
        made.deadline = deadline
        return made

    return connection


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_connections(_Watched, self.deadline), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_connections(_WatchedHTTPS, self.deadline), req, context=getattr(self, "_context", None))
