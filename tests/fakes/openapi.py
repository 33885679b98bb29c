"""GitHub's own REST description, as the GitHub stand-in's judge of every request it receives.

The description is ``generated/api.github.com.json`` of the npm package ``@octokit/openapi`` (GitHub's
official description, github/rest-api-description, plus Octokit's annotations). ``.ci/setup`` runs
``python -m tests.fakes.openapi`` once: ``npm pack`` fetches the pinned version, its sha512 is checked
against the pin, and the file is kept under the virtual environment, so tests never fetch it.
Tests trim it to the operations the stand-in serves and validate with ``openapi-core``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.exceptions import OpenAPIError
from werkzeug.datastructures import Headers, ImmutableMultiDict

PACKAGE = "@octokit/openapi"
VERSION = "23.0.2"
INTEGRITY = "sha512-pV8M7L9GY23AybNvTmo2nyjmpmnt6+2sRE/tqr0ZLQcPS4lnw7u5eZGNmwRNkBC3D7gZXbFx5AHzLUVRBXGDhg=="
MEMBER = "package/generated/api.github.com.json"
CACHED = Path(sys.prefix) / "share" / "cuda-ci-tests" / f"octokit-openapi-{VERSION}" / "api.github.com.json"
HOST = "https://api.github.invalid"  # every operation is validated as if served from here

# The operations the stand-in serves: (path template, method).
OPERATIONS: tuple[tuple[str, str], ...] = (
    ("/repos/{owner}/{repo}", "get"),
    ("/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs", "get"),
    ("/repos/{owner}/{repo}/releases", "get"),
    ("/repos/{owner}/{repo}/releases", "post"),
    ("/repos/{owner}/{repo}/releases/{release_id}", "get"),
    ("/repos/{owner}/{repo}/releases/{release_id}", "patch"),
    ("/repos/{owner}/{repo}/releases/tags/{tag}", "get"),
    ("/repos/{owner}/{repo}/releases/{release_id}/assets", "get"),
    ("/repos/{owner}/{repo}/releases/{release_id}/assets", "post"),
    ("/repos/{owner}/{repo}/releases/assets/{asset_id}", "get"),
    ("/repos/{owner}/{repo}/releases/assets/{asset_id}", "delete"),
)


def install() -> Path:
    """Fetch the pinned description once (npm's own client), check its hash, keep it; idempotent."""
    if CACHED.is_file():
        return CACHED
    with tempfile.TemporaryDirectory(prefix="octokit-openapi-") as tmp:
        subprocess.run(
            ["npm", "pack", "--silent", f"{PACKAGE}@{VERSION}", "--pack-destination", tmp],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        tarball = next(Path(tmp).glob("*.tgz"))
        digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
        if digest != INTEGRITY:
            raise SystemExit(f"{tarball.name}: {digest}, pinned {INTEGRITY}: refusing an unexpected description")
        with tarfile.open(tarball) as archive:
            member = archive.extractfile(MEMBER)
            if member is None:
                raise SystemExit(f"{tarball.name} holds no {MEMBER}")
            data = member.read()
    CACHED.parent.mkdir(parents=True, exist_ok=True)
    partial = CACHED.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(CACHED)
    return CACHED


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def trimmed(full: Mapping[str, Any]) -> dict[str, Any]:
    """The description cut to OPERATIONS and every component they reference; one server (HOST)."""
    paths: dict[str, dict[str, Any]] = {}
    for template, method in OPERATIONS:
        item = full["paths"][template]
        operation = {k: v for k, v in item[method].items() if k != "servers"}
        paths.setdefault(template, {k: v for k, v in item.items() if k == "parameters"})[method] = operation
    components: dict[str, dict[str, Any]] = {}
    pending = list(_refs(paths))
    while pending:
        ref = pending.pop()
        _, _, kind, name = ref.split("/", 3)
        if name in components.get(kind, {}):
            continue
        node = full["components"][kind][name]
        components.setdefault(kind, {})[name] = node
        pending += _refs(node)
    return {
        "openapi": full["openapi"],
        "info": full["info"],
        "servers": [{"url": HOST}],
        "paths": paths,
        "components": components,
    }


@functools.cache
def description() -> OpenAPI:
    if not CACHED.is_file():
        raise RuntimeError(f"{CACHED} is missing: run `bash .ci/setup` (it fetches {PACKAGE}@{VERSION})")
    # GitHub's description is taken as it is: validating the description itself would only cost time.
    return OpenAPI.from_dict(trimmed(json.loads(CACHED.read_bytes())), config=Config(spec_validator_cls=None))


@dataclass(frozen=True)
class SeenRequest:
    """A request as the validator reads it (openapi-core's Request protocol)."""

    path: str
    method: str
    parameters: RequestParameters
    content_type: str
    body: bytes | None
    host_url: str = HOST


def violations(method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> list[str]:
    """What GitHub's description says is wrong with this request; empty when it is well-formed."""
    request = SeenRequest(
        path=path,
        method=method.lower(),
        parameters=RequestParameters(
            query=ImmutableMultiDict(parse_qsl(query, keep_blank_values=True)), header=Headers(list(headers.items()))
        ),
        content_type=(headers.get("Content-Type") or "").lower(),
        body=body or None,
    )
    try:
        description().validate_request(request)
    except OpenAPIError as error:
        details = [str(error).splitlines()[0]]
        for found in (error, error.__cause__):
            details += [e.message for e in getattr(found, "schema_errors", ())]
        return [f"{method} {path}{'?' + query if query else ''}: " + "; ".join(dict.fromkeys(details))]
    return []


if __name__ == "__main__":
    print(install())
