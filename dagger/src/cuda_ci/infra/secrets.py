"""Credentials: where they come from, and how every printed text is kept free of them."""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

SECRET_VARIABLES = frozenset(
    {
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "CUDA_CI_TESTPYPI_TOKEN",
        "CUDA_CI_PYPI_TOKEN",
        "TWINE_PASSWORD",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_URL",  # with the token, it asks for an OIDC token of the job
    }
)
# cuda-ci's settings that are URLs: credentials in them (``https://user:password@host/``) are
# secrets too; they are taken out of the URL when settings are read, and never reach a subprocess.
URL_VARIABLES = frozenset(
    {
        "GITHUB_API_URL",
        "CUDA_CI_TESTPYPI_UPLOAD_URL",
        "CUDA_CI_TESTPYPI_SIMPLE_URL",
        "CUDA_CI_PYPI_UPLOAD_URL",
        "CUDA_CI_PYPI_SIMPLE_URL",
    }
)
HIDDEN = "<hidden>"
_registered: set[str] = set()
_announcers: list[Callable[[list[str]], None]] = []
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def register(values: Iterable[str | None]) -> None:
    """Remember secret values so that :func:`redact` hides them wherever they appear, and hand each new
    one to the announcers (on GitHub Actions: ``::add-mask::``) before anything can print it."""
    new = sorted({v for v in values if v and len(v) >= 4} - _registered)
    _registered.update(new)
    if new:
        for announce in _announcers:
            announce(new)


@contextmanager
def announced_to(announce: Callable[[list[str]], None]) -> Iterator[None]:
    """While the body runs, every secret registered (and every one registered before) goes to
    ``announce`` once: the runner then masks it in the log, even in a child's output."""
    if _registered:
        announce(sorted(_registered))
    _announcers.append(announce)
    try:
        yield
    finally:
        _announcers.remove(announce)


def register_environment(environ: Mapping[str, str] | None = None) -> None:
    """The credentials in ``environ`` (default: this process's): its token variables, and the
    passwords in its settings' URLs."""
    environ = os.environ if environ is None else environ
    register(environ.get(name) for name in SECRET_VARIABLES)
    for name in URL_VARIABLES:
        _, credentials = split_credentials(environ.get(name) or "")
        if credentials is not None:
            user, password = credentials
            register([password, f"{user}:{password}", urllib.parse.quote(password, safe="")])


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """``https://user:pass@host/x`` → (``https://host/x``, (``user``, ``pass``)); unchanged without."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    bare = urllib.parse.urlunsplit(parts._replace(netloc=host))
    return bare, (urllib.parse.unquote(user), urllib.parse.unquote(password))


def carries_secret(name: str, value: str) -> bool:
    """Whether an environment variable must not reach a subprocess: a credential variable, a
    settings URL with credentials, or any value holding a registered secret."""
    if name in SECRET_VARIABLES:
        return True
    if name in URL_VARIABLES and split_credentials(value)[1] is not None:
        return True
    return any(secret in value for secret in _registered)


def sanitize_url(url: str) -> str:
    """``https://user:pass@host/x`` → ``https://<hidden>@host/x``."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{HIDDEN}@", url)


def redact(text: str) -> str:
    for value in sorted(_registered, key=len, reverse=True):
        text = text.replace(value, HIDDEN)
    return sanitize_url(text)


def write_netrc(folder: Path, url: str, auth: tuple[str, str]) -> Path:
    """A private ``netrc`` file in ``folder`` for ``url``'s host: how an installer (pip, uv: ``NETRC``)
    gets an index's credentials without them in an argument or a variable's value."""
    path = folder / "netrc"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        host = urllib.parse.urlsplit(url).hostname or ""
        handle.write(f"machine {host}\nlogin {auth[0]}\npassword {auth[1]}\n")
    return path
