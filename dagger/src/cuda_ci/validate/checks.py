"""Validate a release folder: every check recorded, every problem listed, then the manifest frozen."""

from __future__ import annotations

import tempfile
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

from cuda_ci.build.hygiene import wheel_findings
from cuda_ci.build.identifiers import cibuildwheel_identifiers, wheel_identifiers
from cuda_ci.build.sdists import extract_sdist
from cuda_ci.build.siblings import SIBLINGS_DIR, folder_siblings, sibling_wheels
from cuda_ci.build.variants import missing_variants
from cuda_ci.infra.components import Component, ReleaseUnit, get_unit
from cuda_ci.infra.declared import check_unit, declared_in_sdist
from cuda_ci.infra.errors import CommandError, CudaCiError
from cuda_ci.infra.git import Git
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.manifest import Manifest, ReleaseFolder, ValidationEntry
from cuda_ci.infra.process import PYTHON, run
from cuda_ci.infra.safepaths import FolderProblem, listed_file
from cuda_ci.validate.distfiles import DistFile, DistProblem, archive_problems, identify, metadata, record_problems
from cuda_ci.validate.extra_dist import add_extra_dist, extra_wheels, taken_out_on_failure
from cuda_ci.validate.findings import Findings
from cuda_ci.validate.install import install_checks
from cuda_ci.validate.sdist_builds import sdist_checks

PURE_IDENTIFIER = "py3-none-any"


def dist_files(folder: ReleaseFolder, manifest: Manifest) -> list[Path]:
    """The manifest's sdists and wheels that are listed plain files inside the folder (the others
    are reported by :meth:`ReleaseFolder.verify_hashes` and never opened)."""
    found = []
    for entry in manifest["files"]:
        if entry["kind"] in ("sdist", "wheel"):
            try:
                found.append(listed_file(folder.path, entry["path"]))
            except FolderProblem:
                continue
    return found


def expected_identifiers(component: Component, manifest: Manifest, extra_windows: list[str]) -> set[str]:
    if component.wheel == "pure":
        return {PURE_IDENTIFIER}
    return set(manifest["build_identifiers"]) | set(extra_windows)


def check_names_and_versions(dists: list[DistFile], unit: ReleaseUnit, manifest: Manifest, findings: Findings) -> None:
    version = Version(manifest["version"])
    allowed = {canonicalize_name(d) for d in unit.distributions}
    versions: dict[str, set[str]] = defaultdict(set)
    for dist in dists:
        versions[dist.name].add(str(dist.version))
        if dist.name not in allowed:
            findings.failed(
                "expected-files",
                f"{dist.path.name} is a {dist.name} file; {unit.name} releases only {', '.join(sorted(allowed))}",
            )
            continue
        if dist.version != version:
            findings.failed(
                "version", f"{dist.path.name} has version {dist.version} in its name, the release is {version}"
            )
        try:
            name, meta_version = metadata(dist)
        except DistProblem as error:
            findings.failed("metadata", str(error))
            continue
        if canonicalize_name(name) != dist.name or meta_version != str(version):
            findings.failed(
                "metadata", f"{dist.path.name}: METADATA says {name} {meta_version}, expected {dist.name} {version}"
            )
        else:
            findings.passed("metadata", dist.path.name, f"{name} {meta_version}")
        if not manifest["snapshot"] and (dist.version.is_devrelease or dist.version.local):
            findings.failed(
                "version", f"{dist.path.name} has a dev or local version ({dist.version}); only snapshots may"
            )
    for name, seen in sorted(versions.items()):
        if len(seen) > 1:
            findings.failed("expected-files", f"{name} has files of {len(seen)} versions: {', '.join(sorted(seen))}")


def check_expected_set(
    dists: list[DistFile], unit: ReleaseUnit, manifest: Manifest, extra_windows: list[str], findings: Findings
) -> None:
    """Per distribution exactly one sdist and one wheel per expected build identifier."""
    for component in unit.components:
        name = canonicalize_name(component.distribution)
        sdists = [d for d in dists if d.name == name and d.kind == "sdist"]
        wheels = [d for d in dists if d.name == name and d.kind == "wheel"]
        if len(sdists) != 1:
            findings.failed("expected-files", f"{component.distribution}: {len(sdists)} sdists, expected exactly 1")
        expected = expected_identifiers(component, manifest, extra_windows)
        covered: dict[str, list[str]] = defaultdict(list)
        for wheel in wheels:
            ids = wheel_identifiers(wheel.path.name) & expected
            if not ids:
                findings.failed(
                    "expected-files",
                    f"{wheel.path.name} matches no expected build identifier ({', '.join(sorted(expected))})",
                )
            for identifier in ids:
                covered[identifier].append(wheel.path.name)
        for identifier in sorted(expected):
            if len(covered[identifier]) != 1:
                findings.failed(
                    "expected-files",
                    f"{component.distribution}: {len(covered[identifier])} wheels for {identifier}, expected exactly 1",
                )
        findings.passed(
            "expected-files", None, f"{component.distribution}: 1 sdist, wheels for {', '.join(sorted(expected))}"
        )


def _safe_dists(folder: ReleaseFolder, manifest: Manifest, findings: Findings) -> list[DistFile]:
    """The manifest's dists with valid names whose archives hold no link, no special member and
    nothing over the size limits; nothing else opens an archive that fails this."""
    dists: list[DistFile] = []
    for path in dist_files(folder, manifest):
        try:
            dist = identify(path)
        except DistProblem as error:
            findings.failed("file-name", str(error))
            continue
        unsafe = archive_problems(dist)
        for problem in unsafe:
            findings.failed("archive", problem)
        if not unsafe:
            dists.append(dist)
    return dists


def static_checks(
    folder: ReleaseFolder, manifest: Manifest, unit: ReleaseUnit, extra_windows: list[str], findings: Findings
) -> list[DistFile]:
    for problem in folder.verify_hashes(manifest):
        findings.failed("manifest", problem)
    dists = _safe_dists(folder, manifest, findings)
    check_names_and_versions(dists, unit, manifest, findings)
    check_expected_set(dists, unit, manifest, extra_windows, findings)
    check_variants(dists, findings)
    for dist in dists:
        if dist.kind == "wheel" and dist.path.stat().st_size:
            try:
                problems = record_problems(dist.path)
            except Exception as error:  # a broken zip is reported by the metadata check too
                problems = [f"{dist.path.name}: RECORD cannot be read ({error})"]
            for problem in problems:
                findings.failed("record", problem)
            if not problems:
                findings.passed("record", dist.path.name, "every member matches RECORD")
    hygiene_checks(dists, findings)
    return dists


def check_variants(dists: list[DistFile], findings: Findings) -> None:
    """Every wheel of a component declaring variants (its own sdist's ``[tool.cuda-ci.variants]``)
    holds each variant's compiled files."""
    for sdist in [d for d in dists if d.kind == "sdist"]:
        variants = declared_in_sdist(sdist.path).variants
        for wheel in [d for d in dists if d.kind == "wheel" and d.name == sdist.name] if variants else []:
            assert variants is not None
            problems = missing_variants(wheel.path, variants, f"{sdist.path.name}:pyproject.toml")
            for problem in problems:
                findings.failed("variants", problem)
            if not problems:
                findings.passed(
                    "variants", wheel.path.name, f"builds for {variants.variable}={', '.join(variants.values)}"
                )


def hygiene_checks(dists: list[DistFile], findings: Findings) -> None:
    """Wheel hygiene: no debug sections in shared objects, no sources, each wheel within the
    ``wheel-size-budget`` its own sdist declares (a bad declaration is refused, as by check_variants)."""
    budgets = {d.name: declared_in_sdist(d.path).wheel_size_budget for d in dists if d.kind == "sdist"}
    for dist in [d for d in dists if d.kind == "wheel" and d.path.stat().st_size]:
        for found in wheel_findings(dist.path, budgets.get(dist.name)):
            if found.status == "failed":
                findings.failed(found.check, found.detail)
            elif found.status == "passed":
                findings.passed(found.check, dist.path.name, found.detail)
            else:
                findings.skipped(found.check, dist.path.name, found.detail)


def _tool(argv: list[str], what: str, check: str, file: str | None, reporter: Reporter, findings: Findings) -> bool:
    try:
        run(argv, what=what, reporter=reporter)
    except CommandError as error:
        findings.failed(check, str(error))
        return False
    findings.passed(check, file, what)
    return True


def tool_checks(dists: list[DistFile], unit: ReleaseUnit, reporter: Reporter, findings: Findings) -> None:
    """twine check --strict, check-wheel-contents, auditwheel show."""
    _tool(
        [PYTHON, "-m", "twine", "check", "--strict", *(str(d.path) for d in dists)],
        "twine check --strict",
        "twine",
        None,
        reporter,
        findings,
    )
    for component in unit.components:
        wheels = [d for d in dists if d.kind == "wheel" and d.name == canonicalize_name(component.distribution)]
        if not wheels:
            continue
        argv = [PYTHON, "-m", "check_wheel_contents"]
        if component.wheel_contents_ignore:
            argv += ["--ignore", ",".join(component.wheel_contents_ignore)]
        _tool(
            [*argv, *(str(w.path) for w in wheels)],
            f"check-wheel-contents {component.distribution}",
            "check-wheel-contents",
            None,
            reporter,
            findings,
        )
        for wheel in wheels:
            if component.wheel != "platform":
                continue
            if "linux" not in wheel.path.name:
                findings.skipped("auditwheel", wheel.path.name, "not a Linux wheel")
                continue
            _tool(
                [PYTHON, "-m", "auditwheel", "show", str(wheel.path)],
                f"auditwheel show {wheel.path.name}",
                "auditwheel",
                wheel.path.name,
                reporter,
                findings,
            )


def windows_identifiers(folder: ReleaseFolder, unit: ReleaseUnit, extra: list[str]) -> list[str]:
    """cibuildwheel's Windows selection, when the extra wheels are Windows wheels."""
    if not any("win" in name for name in extra):
        return []
    component = next(c for c in unit.components if c.wheel == "platform")  # extra_wheels refused a pure unit
    sdist = next(folder.dist.glob(f"{component.project_name}-*.tar.gz"), None)
    if sdist is None:
        raise CudaCiError(
            f"{folder.dist} holds no sdist of {component.distribution}, which cibuildwheel's Windows selection is "
            "read from: validate a release folder that `cuda-ci build` made (not --wheels-only)"
        )
    with tempfile.TemporaryDirectory(prefix="cuda-ci-cibw-") as tmp:
        return cibuildwheel_identifiers(extract_sdist(sdist, Path(tmp)), "windows")


def _commit_time(repo: Path, commit: str) -> int:
    """The commit's time (SBOM timestamps), or 0 where the repository cannot say."""
    try:
        return Git.open(repo).commit_time(commit)
    except CudaCiError:
        return 0


def validate_release(folder: ReleaseFolder, repo: Path, extra_dist: Path | None, reporter: Reporter) -> Manifest:
    """Run every check; on success record them in the manifest, which is then frozen."""
    manifest = folder.load()
    if "validation" in manifest:
        raise CudaCiError(
            f"{folder.manifest_path} is already validated and frozen: build a new release folder to validate again"
        )
    unit = get_unit(manifest["component"])
    if extra_dist is None:
        return _validate(folder, repo, manifest, unit, [], reporter)
    wheels = extra_wheels(folder, unit, extra_dist)  # every check that needs no copy, before the first copy
    with taken_out_on_failure(folder, manifest):
        extra = add_extra_dist(folder, manifest, wheels, _commit_time(repo, manifest["commit"]))
        return _validate(folder, repo, manifest, unit, extra, reporter)


def _validate(
    folder: ReleaseFolder, repo: Path, manifest: Manifest, unit: ReleaseUnit, extra: list[str], reporter: Reporter
) -> Manifest:
    findings = Findings()
    with reporter.step("static checks (names, METADATA, RECORD, expected files)"):
        extra_windows = windows_identifiers(folder, unit, extra) if extra else []
        dists = static_checks(folder, manifest, unit, extra_windows, findings)
        findings.raise_if_any("validate")
    siblings = folder_siblings(folder.path, manifest["commit"], unit)
    # The tools only read dist/, the install only writes its own environment: side by side, each
    # with its own findings, merged in a fixed order so that the manifest does not depend on timing.
    tools_findings, install_findings = Findings(), Findings()

    def run_tools(child: Reporter) -> None:
        with child.step("twine, check-wheel-contents, auditwheel"):
            tool_checks(dists, unit, child, tools_findings)

    with reporter.alongside(run_tools), reporter.step("install and import in a fresh environment"):
        install_checks(dists, unit, manifest, folder, siblings, reporter, install_findings)
    findings.merge(tools_findings)
    findings.merge(install_findings)
    with reporter.step("each sdist builds a wheel"):
        sdist_checks(dists, manifest, reporter, findings, siblings)
    findings.raise_if_any("validate")
    manifest["validation"] = findings.entries
    folder.save(manifest)
    return manifest


def smoke_release(folder: ReleaseFolder, repo: Path, python: str, reporter: Reporter) -> list[ValidationEntry]:
    """Only the install-and-import check, for another interpreter; the manifest is left as it is."""
    manifest = folder.load()
    unit = get_unit(manifest["component"])
    dists = [identify(p) for p in dist_files(folder, manifest)]
    siblings = folder_siblings(folder.path, manifest["commit"], unit)
    findings = Findings()
    install_checks(dists, unit, manifest, folder, siblings, reporter, findings, python)
    findings.raise_if_any(f"smoke install with {python}")
    return findings.entries


def import_test_wheels(folder: ReleaseFolder, repo: Path, python: str, reporter: Reporter) -> list[ValidationEntry]:
    """A wheel job's import test, on its own runner and in its own image (an arm64 wheel on arm64):
    its platform wheels, with this commit's siblings built for ``python``, installed into a fresh
    environment of ``python`` from this job's files only, then imported (validate's install check).
    The only import test of another interpreter's wheel: the release folder's siblings are built for
    the build's interpreter. A job whose wheels ``python`` cannot install fails: a test of nothing is
    no test."""
    manifest = folder.load()
    whole = get_unit(manifest["component"])
    # a wheel job builds only the unit's platform wheels (cuda-bindings' job: not the pure cuda-python)
    unit = replace(whole, components=tuple(c for c in whole.components if c.wheel == "platform"))
    dists = [identify(p) for p in dist_files(folder, manifest)]
    siblings = sibling_wheels(repo, manifest["commit"], unit, folder.path / SIBLINGS_DIR, reporter, python=python)
    # no sdist here to read them from: the commit's declarations (cuda-core[cu13] brings cuda-bindings)
    declared = check_unit(Git.open(repo), manifest["commit"], unit)
    extras = {name: found.install_extras for name, found in declared.items()}
    findings = Findings()
    install_checks(dists, unit, manifest, folder, siblings, reporter, findings, python, extras)
    imported = [e for e in findings.entries if e["check"] == "import" and e["status"] == "passed"]
    if not findings.problems and len(imported) != len(unit.components):
        names = ", ".join(d.path.name for d in dists) or "none"
        findings.failed(
            "import",
            f"{python} could install none of this job's wheels ({names}), so none was import-tested: "
            "build them with the interpreter the job names (--build-python)",
        )
    findings.raise_if_any(f"import test of {unit.name}'s wheels with {python}")
    return findings.entries
