"""Wheels built by other jobs of the same run, checked before they join a release.

A wheel job (one platform group of the plan's matrix) reports what it made: the commit its checkout
names for the release, the version, and each file's sha256 (:func:`wheel_report`, a job output). The
job that assembles the release takes a wheel only if its plan names it (distribution, identifier,
version), its job reported it with that very sha256 from the plan's commit, and every identifier the
plan builds is there (:func:`reported_problems`). The build node runs the same checks on the Linux wheels
it is handed (``--prebuilt-wheels`` with ``--wheel-reports``), so ``dagger call release --prebuilt``
refuses what the plan does not name, whoever calls it.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from cuda_ci.build.identifiers import wheel_identifiers
from cuda_ci.infra.components import ReleaseUnit, get_unit
from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.manifest import sha256_of
from cuda_ci.plan.wheel_matrix import GROUPS, linux_platform

REPORT_SCHEMA = 1
OUTPUT_PREFIX = "wheels-"  # a wheel job's output: wheels-<group>


class WheelReport(TypedDict):
    """What one wheel job made, as its job output: the source and each file's sha256."""

    schema: int
    unit: str
    group: str
    commit: str
    version: str
    files: dict[str, str]


@dataclass(frozen=True, kw_only=True)
class Expected:
    """What a release takes from wheel jobs: its plan's unit, commit, versions and identifiers."""

    unit: ReleaseUnit
    commit: str
    versions: Mapping[str, str]  # distribution → version
    identifiers: Mapping[str, str]  # identifier → the matrix group that builds it

    @classmethod
    def of_plan(cls, plan: Mapping[str, Any]) -> Expected:
        """From ``cuda-ci plan --json``'s document (its ``matrix`` names every identifier and its group)."""
        source = plan["source"]
        groups = {i: entry["group"] for entry in plan.get("matrix", ()) for i in entry["identifiers"]}
        return cls(
            unit=get_unit(source["unit"]), commit=source["commit"], versions=source["versions"], identifiers=groups
        )

    @classmethod
    def of_linux(cls, unit: ReleaseUnit, commit: str, version: str, identifiers: Iterable[str]) -> Expected:
        """The build node's: cibuildwheel's Linux ``identifiers`` of ``unit`` at ``commit``, one version."""
        groups = {i: GROUPS[linux_platform(i)].key for i in identifiers}
        return cls(unit=unit, commit=commit, versions={c.distribution: version for c in unit.components},
                   identifiers=groups)  # fmt: skip

    def platform_distributions(self) -> dict[str, str]:
        """canonical name → distribution, of the unit's components that build platform wheels."""
        platform = [c for c in self.unit.components if c.wheel == "platform"]
        return {canonicalize_name(c.distribution): c.distribution for c in platform}


def _wheel_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".whl")) if folder.is_dir() else []


def wheel_problems(wheel: Path, expected: Expected) -> list[str]:
    """Why the plan does not name ``wheel`` (a link, an unplanned distribution, identifier or version)."""
    if not stat.S_ISREG(wheel.lstat().st_mode):
        return [f"{wheel.name} is a link or not a plain file: a wheel job hands over the wheel itself"]
    try:
        name, version, _, _ = parse_wheel_filename(wheel.name)
    except InvalidWheelFilename as error:
        return [f"{wheel.name}: not a valid wheel file name ({error})"]
    distribution = expected.platform_distributions().get(canonicalize_name(name))
    if distribution is None:
        names = ", ".join(expected.platform_distributions().values())
        return [
            f"{wheel.name}: {name} is not a platform distribution of {expected.unit.name} ({names}): "
            "the plan builds no such wheel; remove it from the wheel jobs' artifacts"
        ]
    problems = []
    planned = expected.versions.get(distribution)
    if str(version) != planned:
        problems.append(
            f"{wheel.name}: version {version}, but the plan releases {distribution} {planned} "
            f"at {expected.commit[:12]}: a wheel of another build; run the release's wheel jobs again"
        )
    unplanned = sorted(wheel_identifiers(wheel.name) - set(expected.identifiers))
    if unplanned:
        problems.append(
            f"{wheel.name}: identifier {', '.join(unplanned)} is not one the plan builds "
            f"({len(expected.identifiers)} planned: see `cuda-ci plan --json`'s matrix): an unplanned "
            "wheel is never released"
        )
    return problems


def missing_identifiers(wheels: Iterable[Path], expected: Expected, groups: set[str] | None = None) -> list[str]:
    """A problem for each planned identifier (of ``groups``, default all) that no wheel of ``wheels`` carries."""
    found: set[str] = set()
    for wheel in wheels:
        try:
            found |= wheel_identifiers(wheel.name)
        except InvalidWheelFilename:
            continue
    wanted = [i for i, g in expected.identifiers.items() if groups is None or g in groups]
    return [
        f"no wheel for the planned identifier {i} (matrix group {expected.identifiers[i]}): its wheel job made "
        "none; run the release's wheel jobs again"
        for i in wanted
        if i not in found
    ]


def wheel_report(folder: Path, expected: Expected, group: str, commit: str) -> tuple[WheelReport, list[str]]:
    """A wheel job's report of ``folder`` (its group's wheels, built at ``commit``) and every problem:
    a wheel the plan does not name, a planned identifier of the group missing, another commit."""
    wheels = _wheel_files(folder)
    problems = [p for wheel in wheels for p in wheel_problems(wheel, expected)]
    groups = sorted(set(expected.identifiers.values()))
    if group not in groups:
        problems.append(f"the plan's matrix has no group {group} (it has {', '.join(groups)}): check --group")
    else:
        problems += missing_identifiers(wheels, expected, {group})
    problems += _commit_problems(commit, expected, f"this job's checkout ({group})")
    versions = set(expected.platform_distributions().values())
    report = WheelReport(
        schema=REPORT_SCHEMA,
        unit=expected.unit.name,
        group=group,
        commit=commit,
        version=next((expected.versions[d] for d in versions), ""),
        files={w.name: sha256_of(w) for w in wheels},
    )
    return report, problems


def _commit_problems(commit: str, expected: Expected, who: str) -> list[str]:
    if commit == expected.commit:
        return []
    return [
        f"{who} built {commit[:12]}, but the plan releases {expected.commit[:12]}: the tag moved (or another "
        "commit was checked out) after the plan was made; start the release again"
    ]


def read_reports(path: Path) -> list[WheelReport]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise CudaCiError(f"the wheel jobs' reports {path} cannot be read ({error.strerror})") from None
    return parse_reports(text, str(path))


def parse_reports(text: str, source: str) -> list[WheelReport]:
    """The wheel jobs' reports from ``toJSON(needs.<wheel job>.outputs)``: an object whose ``wheels-<group>``
    values are each a report's JSON (other outputs are ignored)."""
    try:
        outputs = json.loads(text)
        found = [json.loads(v) for k, v in outputs.items() if k.startswith(OUTPUT_PREFIX) and v]
    except (ValueError, AttributeError, TypeError) as error:
        raise CudaCiError(
            f"{source} is not the wheel jobs' outputs as JSON ({error}): write toJSON(needs.<wheel job>.outputs) there"
        ) from None
    reports = []
    for report in found:
        if not isinstance(report, dict) or report.get("schema") != REPORT_SCHEMA or "files" not in report:
            raise CudaCiError(
                f"{source}: a wheel job's output is not a schema {REPORT_SCHEMA} wheel report "
                "(what cuda-ci check-wheels --group writes)"
            )
        reports.append(WheelReport(**report))  # type: ignore[typeddict-item]
    return reports


def reported_problems(folders: Sequence[Path], expected: Expected, reports: Sequence[WheelReport]) -> list[str]:
    """Every wheel of ``folders`` against the plan and the wheel jobs' reports: each must be planned,
    reported by a job of this run with its exact sha256, from the plan's commit; every planned
    identifier must be there, every reported file handed over. Empty: all is well."""
    wheels = [w for folder in folders for w in _wheel_files(folder)]
    if not reports:
        return [f"no wheel job reported any file for {expected.unit.name}: pass the wheel jobs' outputs (--reports)"]
    problems: list[str] = []
    hashes: dict[str, tuple[str, str]] = {}
    groups = set(expected.identifiers.values())
    for report in (r for r in reports if r["group"] in groups):  # the build node takes the Linux groups only
        problems += _commit_problems(report["commit"], expected, f"the wheel job {report['group']}")
        hashes.update({name: (digest, report["group"]) for name, digest in report["files"].items()})
    for wheel in wheels:
        problems += wheel_problems(wheel, expected)
        problems += _hash_problems(wheel, hashes)
    names = {w.name for w in wheels}
    problems += [
        f"{name}: reported by the wheel job {group} but not handed over (its artifact lacks it): "
        "download every wheel job's artifact of this run"
        for name, (_, group) in sorted(hashes.items())
        if name not in names
    ]
    return problems + missing_identifiers(wheels, expected)


def prebuilt_problems(source: Path, expected: Expected, reports: Path | None) -> list[str]:
    """The build node's check of the Linux wheels it is handed: planned, complete and, with the wheel
    jobs' reports (a fanned-out workflow), reported with their sha256 from the plan's commit."""
    if reports is not None:
        return reported_problems([source], expected, read_reports(reports))
    wheels = _wheel_files(source)
    return [p for wheel in wheels for p in wheel_problems(wheel, expected)] + missing_identifiers(wheels, expected)


def _hash_problems(wheel: Path, hashes: Mapping[str, tuple[str, str]]) -> list[str]:
    if wheel.name not in hashes:
        return [f"{wheel.name}: no wheel job of this run reported it: a wheel from elsewhere is never released"]
    digest, group = hashes[wheel.name]
    actual = sha256_of(wheel)
    if actual != digest:
        return [
            f"{wheel.name} was altered after its wheel job ({group}) made it: sha256 {actual}, "
            f"the job reported {digest}; run the release again"
        ]
    return []
