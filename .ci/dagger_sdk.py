"""Vendor the Dagger Python SDK into dagger/sdk/, as the engine does before it installs the module.

Dagger's Python runtime copies the SDK of the engine's version into the module's `sdk/` folder
(the `[tool.uv.sources]` path source of dagger/pyproject.toml) and runs uv there. Here no engine
runs, so the same SDK comes from the dagger-io release of dagger.json's engineVersion, its sdist
checked against the sha256 PyPI publishes for it (pinned below). Safe to run again.

One difference from the engine's copy: the sdist lacks the SDK's `codegen/` uv workspace member,
so the SDK's own development tables that name it (`[dependency-groups]`, `[tool.uv.sources]`,
`[tool.uv.workspace]`) are left out; `uv sync --no-dev` of the module installs none of them.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sys
import tarfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# dagger_io-<version>.tar.gz as PyPI lists it (https://pypi.org/simple/dagger-io/).
SDIST_SHA256 = {"0.21.11": "4a779b8497f5a79b7a6e2aa47b7a3ad09c24bb92281fc19f6646a95c8ec7328c"}
SIMPLE = "https://pypi.org/simple/dagger-io/"
DEVELOPMENT_TABLES = ("[dependency-groups]", "[tool.uv.sources]", "[tool.uv.workspace]")


def engine_version() -> str:
    return json.loads((ROOT / "dagger.json").read_text())["engineVersion"].removeprefix("v")


def sdist_url(version: str) -> str:
    request = urllib.request.Request(SIMPLE, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    name = f"dagger_io-{version}.tar.gz"
    return next(f["url"] for f in files if f["filename"] == name)


def without_development_tables(pyproject: str) -> str:
    kept, skipping = [], False
    for line in pyproject.splitlines(keepends=True):
        if line.startswith("["):
            skipping = line.strip() in DEVELOPMENT_TABLES
        if not skipping:
            kept.append(line)
    return "".join(kept)


def vendor(version: str, target: Path) -> None:
    expected = SDIST_SHA256[version]
    marker = target / ".sdist-sha256"
    if marker.is_file() and marker.read_text().strip() == expected:
        return
    with urllib.request.urlopen(sdist_url(version), timeout=120) as response:
        data = response.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        sys.exit(f"dagger-io {version} sdist: sha256 {digest}, expected {expected}")
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        prefix = f"dagger_io-{version}/"
        for member in archive.getmembers():
            if not member.name.startswith(prefix) or not (member.isfile() or member.isdir()):
                continue
            relative = Path(member.name[len(prefix) :])
            if relative.is_absolute() or ".." in relative.parts or not relative.parts:
                continue
            destination = staging / relative
            if member.isdir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None
            destination.write_bytes(source.read())
    pyproject = staging / "pyproject.toml"
    pyproject.write_text(without_development_tables(pyproject.read_text()))
    (staging / ".sdist-sha256").write_text(expected + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)


if __name__ == "__main__":
    vendor(engine_version(), ROOT / "dagger" / "sdk")
    print(f"dagger/sdk: dagger-io {engine_version()}")
