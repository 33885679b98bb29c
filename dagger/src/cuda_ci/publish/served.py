"""Published means served: the bytes an index serves under each file name are the manifest's.

An index's listing may claim one sha256 and serve other bytes (a broken mirror, a cache, a
compromised index); an install-back proves only the installed version. So after an upload each
file is downloaded from the link the project page gives (PEP 503/691), hashed as it streams, and
compared with the manifest before the target is reported done.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Sequence
from typing import BinaryIO, cast

from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.httpclient import HttpClient
from cuda_ci.infra.index import ServedFile, basic_auth, served_files
from cuda_ci.infra.manifest import FileEntry
from cuda_ci.infra.secrets import sanitize_url


class _HashingSink:
    """Where a download streams: hashed, never stored; more than ``limit`` bytes is refused."""

    def __init__(self, name: str, limit: int) -> None:
        self.name, self.limit = name, limit
        self.seek(0)

    def seek(self, offset: int, whence: int = 0) -> int:  # a retried download starts again
        self.digest, self.size = hashlib.sha256(), 0
        return 0

    def truncate(self, size: int | None = None) -> int:
        return 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.limit:
            raise CudaCiError(f"{self.name}: the index serves more than the {self.limit} bytes the manifest lists")
        self.digest.update(data)
        return len(data)


def served_sha256(
    http: HttpClient, served: ServedFile, entry: FileEntry, simple_url: str, auth: tuple[str, str] | None
) -> str:
    """The sha256 of the bytes served at ``served.url`` (credentials sent only to the index's own origin)."""
    same_origin = urllib.parse.urlsplit(served.url)[:2] == urllib.parse.urlsplit(simple_url)[:2]
    headers = basic_auth(auth) if auth is not None and same_origin else {}
    sink = _HashingSink(entry["name"], entry["size"])
    http.request("GET", served.url, headers=headers, ok=frozenset({200}), sink=cast(BinaryIO, sink))
    return sink.digest.hexdigest()


def served_problems(
    http: HttpClient, index: str, simple_url: str, entries: Sequence[FileEntry], auth: tuple[str, str] | None = None
) -> list[str]:
    """Every file of ``entries`` the index at ``simple_url`` does not list, or serves with bytes
    other than the manifest's (each problem names the file, the index and both hashes)."""
    listed: dict[str, ServedFile] = {}
    for distribution in sorted({e["distribution"] or "" for e in entries}):
        listed.update(served_files(http, simple_url, distribution, auth=auth))
    problems = []
    for entry in entries:
        served = listed.get(entry["name"])
        if served is None:
            problems.append(
                f"{entry['name']} is not listed by {index} ({simple_url}): upload it first "
                f"(cuda-ci publish --target {index})"
            )
            continue
        try:
            actual = served_sha256(http, served, entry, simple_url, auth)
        except CudaCiError as error:
            problems.append(f"{index} ({simple_url}): {error.problems[0]}")
            continue
        if actual != entry["sha256"]:
            problems.append(
                f"{entry['name']}: {index} ({simple_url}) serves bytes with sha256 {actual} at "
                f"{sanitize_url(served.url)}, but the release's file has sha256 {entry['sha256']}: "
                "what is served is not what was built; find out why before any install from it"
            )
    return problems
