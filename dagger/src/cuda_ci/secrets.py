"""Credentials: where they come from, and how every printed text is kept free of them."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

SECRET_VARIABLES = frozenset(
    {
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "CUDA_CI_TESTPYPI_TOKEN",
        "CUDA_CI_PYPI_TOKEN",
        "TWINE_PASSWORD",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    }
)
HIDDEN = "<hidden>"
_registered: set[str] = set()
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def register(values: Iterable[str | None]) -> None:
    """Remember secret values so that :func:`redact` hides them wherever they appear."""
    _registered.update(v for v in values if v and len(v) >= 4)


def register_environment() -> None:
    register(os.environ.get(name) for name in SECRET_VARIABLES)


def sanitize_url(url: str) -> str:
    """``https://user:pass@host/x`` → ``https://<hidden>@host/x``."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{HIDDEN}@", url)


def redact(text: str) -> str:
    for value in sorted(_registered, key=len, reverse=True):
        text = text.replace(value, HIDDEN)
    return sanitize_url(text)
