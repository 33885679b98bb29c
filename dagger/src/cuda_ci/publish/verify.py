"""``cuda-ci verify``: what a downstream packager runs on a release folder or a GitHub release.

Checks SHA256SUMS, the manifest (schema, every file, every hash), the version against the tag, and
the attestations where present. Works on a release folder (``dist/``, ``assets/``) and on the flat
folder of a GitHub release's downloaded assets alike.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from packaging.version import Version

from cuda_ci.build.sbom import check_sbom
from cuda_ci.build.sibling_record import folder_sibling_problems
from cuda_ci.build.siblings import SIBLINGS_DIR
from cuda_ci.infra.errors import CudaCiError, UsageError
from cuda_ci.infra.github import GitHub
from cuda_ci.infra.manifest import MANIFEST_NAME, SUMS_NAME, Manifest, check_schema, sha256_of
from cuda_ci.infra.safepaths import FolderProblem, listed_file, unlisted_entries
from cuda_ci.plan.tags import parse_tag
from cuda_ci.publish.provenance import attestation_problems, find_attestations
from cuda_ci.validate.distfiles import DistProblem, identify


@dataclass
class VerifyReport:
    passed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _load(root: Path) -> Manifest:
    path = root / MANIFEST_NAME
    if not path.is_file():
        raise UsageError(f"{root} holds no {MANIFEST_NAME}: point at a release folder or the downloaded release assets")
    try:
        manifest: Manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise CudaCiError(f"{path} is not JSON: {error}") from None
    return manifest


def verify_folder(root: Path) -> VerifyReport:
    """Every check; problems gathered, not raised."""
    report = VerifyReport()
    manifest = _load(root)
    flat = not (root / "dist").is_dir()
    try:
        check_schema(manifest)
        report.passed.append(f"{MANIFEST_NAME} matches the published schema")
    except CudaCiError as error:
        report.problems += list(error.problems)
        return report
    _check_files(root, manifest, flat, report)
    if not flat:
        report.problems += unlisted_entries(root, {f["path"] for f in manifest["files"]})
    _check_sums(root, manifest, report)
    _check_version(root, manifest, flat, report)
    _check_attestations(root, manifest, flat, report)
    _check_siblings(root, report)
    return report


def _check_siblings(root: Path, report: VerifyReport) -> None:
    """A folder's ``siblings/`` (never published, but installed by later stages) as recorded when built."""
    if not os.path.lexists(root / SIBLINGS_DIR):
        return
    problems, count = folder_sibling_problems(root / SIBLINGS_DIR)
    report.problems += problems
    if not problems:
        report.passed.append(f"{SIBLINGS_DIR}/ holds the {count} file(s) recorded when they were built, unchanged")


def _check_files(root: Path, manifest: Manifest, flat: bool, report: VerifyReport) -> None:
    for entry in manifest["files"]:
        try:
            path = listed_file(root, entry["path"], flat=flat)
        except FolderProblem as error:
            report.problems.append(error.problems[0])
            continue
        if (actual := sha256_of(path)) != entry["sha256"]:
            report.problems.append(f"{entry['name']}: sha256 {actual}, the manifest says {entry['sha256']}")
        else:
            report.passed.append(f"{entry['name']}: sha256 matches the manifest")
            if entry["kind"] == "sbom":
                _check_sbom(path, report)


def _check_sbom(path: Path, report: VerifyReport) -> None:
    try:
        check_sbom(path.read_text(encoding="utf-8"), path.name)
    except CudaCiError as error:
        report.problems.append(error.problems[0])
    else:
        report.passed.append(f"{path.name} is valid CycloneDX 1.6")


def _check_sums(root: Path, manifest: Manifest, report: VerifyReport) -> None:
    sums = root / SUMS_NAME
    if not sums.is_file():
        report.problems.append(f"{SUMS_NAME} is missing")
        return
    listed = {}
    for line in sums.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    expected = {f["name"]: f["sha256"] for f in manifest["files"]}
    if listed != expected:
        differ = sorted(set(listed.items()) ^ set(expected.items()))
        report.problems.append(f"{SUMS_NAME} disagrees with the manifest: {', '.join(n for n, _ in differ)}")
    else:
        report.passed.append(f"{SUMS_NAME} lists exactly the manifest's files and hashes")


def _check_version(root: Path, manifest: Manifest, flat: bool, report: VerifyReport) -> None:
    version = Version(manifest["version"])
    if manifest["tag"]:
        try:
            tag = parse_tag(manifest["tag"], manifest["component"])
        except CudaCiError as error:
            report.problems.append(f"the manifest's tag: {error.problems[0].splitlines()[0]}")
            return
        if tag.version != version:
            report.problems.append(f"the manifest's version {version} is not the tag's {tag.version}")
        else:
            report.passed.append(f"version {version} is the tag's ({tag.name})")
    for entry in manifest["files"]:
        if entry["kind"] in ("sdist", "wheel"):
            try:
                found = identify(listed_file(root, entry["path"], flat=flat)).version
            except FolderProblem:
                continue  # reported by the file check
            except DistProblem as error:
                report.problems.append(str(error))
                continue
            if found != version:
                report.problems.append(f"{entry['name']} has version {found}, the release is {version}")


def _check_attestations(root: Path, manifest: Manifest, flat: bool, report: VerifyReport) -> None:
    pairing = find_attestations(root, manifest, flat=flat)
    report.problems += pairing.problems
    for stray in pairing.strays:
        report.problems.append(f"{stray} attests no file of this release")
    if not pairing.pairs and not pairing.strays and not pairing.problems:
        report.passed.append("no attestations present (made only in the release workflow)")
        return
    hashes = {f["name"]: f["sha256"] for f in manifest["files"]}
    for name, path in sorted(pairing.pairs.items()):
        problems = attestation_problems(path, name, hashes[name])
        report.problems += problems
        if not problems:
            report.passed.append(f"{path.name}: subject is {name} with its sha256")


def download_release(github: GitHub, tag: str, dest: Path) -> list[Path]:
    """The published release's assets, flat in ``dest``, as a downstream packager gets them."""
    release = github.published_release(tag)
    if release is None:
        raise CudaCiError(f"no published GitHub release of {tag} in {github.repository}")
    return [github.download_asset(asset, dest) for asset in github.assets(release)]


def verify_from_github(github: GitHub, tag: str) -> VerifyReport:
    with tempfile.TemporaryDirectory(prefix="cuda-ci-verify-") as tmp:
        download_release(github, tag, Path(tmp))
        report = verify_folder(Path(tmp))
        manifest = _load(Path(tmp))
    if manifest["tag"] != tag:
        report.problems.append(f"the release of {tag} carries the manifest of {manifest['tag']}")
    return report
