"""Real git repositories for the tests: a throwaway copy of this monorepo's components."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from cuda_ci.infra.components import COMPONENTS

REPO_ROOT = Path(__file__).resolve().parents[1]
_IGNORE = shutil.ignore_patterns("*.egg-info", "build", "dist", "__pycache__", "*.so", "*.pyd", ".pytest_cache")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "cuda-ci tests",
    "GIT_AUTHOR_EMAIL": "tests@example.invalid",
    "GIT_COMMITTER_NAME": "cuda-ci tests",
    "GIT_COMMITTER_EMAIL": "tests@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


def make_monorepo(path: Path) -> Path:
    """A fresh repository on ``main`` holding the working tree's four components, one commit."""
    path.mkdir(parents=True)
    for component in COMPONENTS:
        shutil.copytree(REPO_ROOT / component.dir, path / component.dir, ignore=_IGNORE)
    (path / ".gitignore").write_text(".release/\n*.egg-info/\nbuild/\n")
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial import")
    return path


def clone(source: Path, target: Path, *extra: str) -> Path:
    subprocess.run(
        ["git", "clone", "-q", *extra, f"file://{source}", str(target)], check=True, env={**os.environ, **GIT_ENV}
    )
    return target


def commit_change(repo: Path, message: str = "a change") -> str:
    marker = repo / "cuda_core" / "CHANGES.txt"
    marker.write_text(marker.read_text() + message + "\n" if marker.exists() else message + "\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def tagged_clone(template: Path, root: Path, *tags: str) -> Path:
    """A clone of ``template`` under ``root`` with ``tags`` at main's head (a ``v`` tag annotated)."""
    repo = clone(template, root / "repo")
    for tag in tags:
        git(repo, "tag", *(["-a", tag, "-m", tag] if tag.startswith("v") else [tag]))
    return repo


def folder_from(repo: Path, root: Path, *argv: str) -> Path:
    """``cuda-ci ARGV --repo REPO --out ROOT/release --json``, which must succeed (its document checked
    against its schema); the release folder."""
    import contextlib
    import io

    from cuda_ci.cli.app import main

    out = root / "release"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main([*argv, "--repo", str(repo), "--out", str(out), "--json"]) == 0
    assert result_document(printed.getvalue(), argv[0])["release_dir"] == str(out)
    return out


def result_document(text: str, command: str) -> dict:  # type: ignore[type-arg]
    """``cuda-ci COMMAND --json``'s stdout, checked against ``schemas/COMMAND.schema.json``."""
    import json

    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    from cuda_ci.infra.manifest import SCHEMA_FILE

    resources = [
        Resource.from_contents(json.loads(path.read_text())) for path in SCHEMA_FILE.parent.glob("*.schema.json")
    ]
    registry: Registry = Registry().with_resources((r.contents["$id"], r) for r in resources)
    schema = json.loads((SCHEMA_FILE.parent / f"{command}.schema.json").read_text())
    document = json.loads(text)
    errors = [e.message for e in Draft202012Validator(schema, registry=registry).iter_errors(document)]
    assert not errors, f"cuda-ci {command} --json does not match its schema: {errors}"
    assert document["command"] == command and document["schema"] == 1
    return document  # type: ignore[no-any-return]
