"""The wheel matrix a workflow fans out: every identifier a release builds, grouped by the native runner
that builds it (Linux x86_64 and arm64 through the Dagger function for one platform, Windows AMD64 and
ARM64 through the host CLI), in the form a workflow reads with ``fromJSON``.

The plan (:mod:`cuda_ci.plan.release`) holds the identifiers (cibuildwheel's Linux and Windows selections); this
module only groups them and names each group's runner and artifact. A pull request may build a subset
(:func:`pull_request_subset`) when it changes nothing a build reads (:func:`build_inputs`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal, TypedDict

from cuda_ci.infra.components import Component, ReleaseUnit, dependency_closure

Os = Literal["linux", "windows"]


@dataclass(frozen=True, kw_only=True)
class NativeWheel:
    """One build identifier a release builds, and the platform (OS/architecture) whose runner builds it."""

    identifier: str
    platform: str  # linux/amd64, linux/arm64 (the OCI platform of its container), windows/amd64, windows/arm64


@dataclass(frozen=True)
class Group:
    key: str  # names the group's job output (wheels-<key>) and artifact (wheels-<key>)
    os: Os
    runner: str  # GitHub's hosted runner of that architecture


# Each platform's native runner (GitHub-hosted: ubuntu-24.04-arm and windows-11-arm are the arm64 ones).
GROUPS: dict[str, Group] = {
    "linux/amd64": Group("linux-amd64", "linux", "ubuntu-latest"),
    "linux/arm64": Group("linux-arm64", "linux", "ubuntu-24.04-arm"),
    "windows/amd64": Group("windows-amd64", "windows", "windows-latest"),
    "windows/arm64": Group("windows-arm64", "windows", "windows-11-arm"),
}
_WINDOWS_ARCHS = {"win_amd64": "windows/amd64", "win_arm64": "windows/arm64"}


class MatrixEntry(TypedDict):
    unit: str
    group: str
    os: Os
    platform: str
    runner: str
    identifiers: list[str]
    artifact: str


def windows_platform(identifier: str) -> str:
    """The platform of a Windows identifier (``cp312-win_arm64`` → ``windows/arm64``)."""
    arch = identifier.partition("-")[2]
    if arch not in _WINDOWS_ARCHS:
        raise ValueError(f"{identifier}: no native Windows runner builds {arch or 'this identifier'}")
    return _WINDOWS_ARCHS[arch]


def linux_platform(identifier: str) -> str:
    """The OCI platform of a Linux identifier's container (``cp312-manylinux_aarch64`` → ``linux/arm64``)."""
    return "linux/arm64" if identifier.endswith("aarch64") else "linux/amd64"


def native_wheels(linux: Iterable[tuple[str, str]], windows: Iterable[str]) -> tuple[NativeWheel, ...]:
    """The plan's wheels: ``linux`` as (identifier, OCI platform) pairs, ``windows`` as identifiers."""
    found = [NativeWheel(identifier=i, platform=p) for i, p in linux]
    return (*found, *(NativeWheel(identifier=i, platform=windows_platform(i)) for i in windows))


def matrix(unit: str, wheels: Sequence[NativeWheel]) -> list[MatrixEntry]:
    """One entry per platform group, in GROUPS' order, each with its identifiers in the plan's order."""
    entries = []
    for platform, group in GROUPS.items():
        identifiers = [w.identifier for w in wheels if w.platform == platform]
        if identifiers:
            entries.append(
                MatrixEntry(
                    unit=unit,
                    group=group.key,
                    os=group.os,
                    platform=platform,
                    runner=group.runner,
                    identifiers=identifiers,
                    artifact=f"wheels-{group.key}",
                )
            )
    return entries


# --- pull requests: a subset when nothing a build reads has changed --------------------------------
# What a component's build never reads: its tests and docs (the sdist may carry them, the wheel is
# compiled from the rest). cuda-ci's own code and lock (dagger/, dagger.json) are the build's recipe.
NOT_BUILT_FROM = ("tests", "docs")
RECIPE = ("dagger", "dagger.json")


def build_inputs(unit: ReleaseUnit) -> list[Component]:
    """The components whose sources a build of ``unit`` reads: its own and the siblings it compiles against."""
    return [*unit.components, *dependency_closure(unit)]


def changed_build_inputs(unit: ReleaseUnit, changed: Iterable[str]) -> list[str]:
    """The paths of ``changed`` (repository-relative, as ``git diff --name-only`` prints them) that a
    build of ``unit`` reads."""
    dirs = {c.dir for c in build_inputs(unit)}
    found = []
    for path in changed:
        parts = PurePosixPath(path).parts
        if not parts:
            continue
        if parts[0] in RECIPE or (parts[0] in dirs and (len(parts) < 2 or parts[1] not in NOT_BUILT_FROM)):
            found.append(path)
    return found


def pull_request_subset(entries: Sequence[MatrixEntry], keep_all: bool) -> list[MatrixEntry]:
    """Every group, each with its first identifier only, unless ``keep_all`` (a build input changed):
    every runner still builds, repairs and import-tests one wheel of the recipe."""
    if keep_all:
        return list(entries)
    return [MatrixEntry(**{**entry, "identifiers": entry["identifiers"][:1]}) for entry in entries]
