"""``cuda-ci verify-reproducible``: rebuild the manifest's commit and compare every file's sha256.

The build pins what makes that possible: ``SOURCE_DATE_EPOCH`` at the commit time (wheels' zip
times), a fixed path for the C extension's debug info (``-ffile-prefix-map``), and an sdist repacked
with sorted members and clamped times (setuptools' sdist ignores ``SOURCE_DATE_EPOCH``). The report
says, per file, whether it matched, and for a wheel that did not, which members differ.
"""

from __future__ import annotations

import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from cuda_ci.build.builder import BuildSource, execute_build, plan_build
from cuda_ci.build.identifiers import installable_here
from cuda_ci.infra.components import get_unit
from cuda_ci.infra.git import Git
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.manifest import FileEntry, ReleaseFolder
from cuda_ci.infra.safepaths import listed_file
from cuda_ci.plan.tags import parse_tag


@dataclass(frozen=True)
class Comparison:
    name: str
    status: str  # same | different | not-rebuilt
    detail: str


def verify_reproducible(folder: ReleaseFolder, repo: Path, reporter: Reporter) -> list[Comparison]:
    manifest = folder.load()
    unit = get_unit(manifest["component"])
    tag = parse_tag(manifest["tag"], unit.name) if manifest["tag"] else None
    source = BuildSource(unit=unit, commit=manifest["commit"], tag=tag, rehearsal=manifest.get("rehearsal", False))
    git = Git.open(repo)
    with tempfile.TemporaryDirectory(prefix="cuda-ci-rebuild-") as tmp:
        rebuilt = ReleaseFolder(Path(tmp) / "rebuild")
        with reporter.in_stage("rebuild"):
            again = execute_build(plan_build(source), git, rebuilt, reporter, manifest["ci_gate"])
        by_name = {f["name"]: f for f in again["files"]}
        results = [_compare(entry, by_name.get(entry["name"]), folder, rebuilt) for entry in manifest["files"]]
    tools = _build_env_changes(manifest["tools"], again["tools"])
    if tools:  # e.g. setuptools writes its own version into every wheel's WHEEL file
        results = [
            Comparison(r.name, r.status, f"{r.detail}; the build environment differs: {tools}")
            if r.status == "different"
            else r
            for r in results
        ]
    return results


def _build_env_changes(then: dict[str, str], now: dict[str, str]) -> str:
    """``name then -> now`` for each kept-build-environment package whose version changed since."""
    names = sorted(n for n in set(then) | set(now) if n.startswith("build-env/") and then.get(n) != now.get(n))
    return ", ".join(f"{n.removeprefix('build-env/')} {then.get(n, 'absent')} -> {now.get(n, 'absent')}" for n in names)


def _compare(entry: FileEntry, again: FileEntry | None, folder: ReleaseFolder, rebuilt: ReleaseFolder) -> Comparison:
    if again is None:
        why = (
            "built on another platform"
            if entry["kind"] == "wheel" and not installable_here(entry["name"])
            else "not rebuilt here"
        )
        return Comparison(entry["name"], "not-rebuilt", why)
    if again["sha256"] == entry["sha256"]:
        return Comparison(entry["name"], "same", entry["sha256"])
    detail = f"sha256 {again['sha256']} != {entry['sha256']}"
    if entry["kind"] == "wheel":
        members = _differing_members(listed_file(folder.path, entry["path"]), rebuilt.path / again["path"])
        detail += f"; members that differ: {', '.join(members) or 'only zip metadata (times, order)'}"
    return Comparison(entry["name"], "different", detail)


def _differing_members(first: Path, second: Path) -> list[str]:
    with zipfile.ZipFile(first) as a, zipfile.ZipFile(second) as b:
        names = sorted(set(a.namelist()) | set(b.namelist()))
        return [n for n in names if n not in a.namelist() or n not in b.namelist() or a.read(n) != b.read(n)]
