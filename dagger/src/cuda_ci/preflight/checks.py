"""Preflight: every check a release needs before anything is built; all findings at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, NotRequired, TypedDict

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from cuda_ci.build.builder import BuildSource
from cuda_ci.infra.components import ReleaseUnit, get_component, get_unit
from cuda_ci.infra.declared import declared_at
from cuda_ci.infra.errors import CudaCiError, Location, PreflightError, Problem, UsageError
from cuda_ci.infra.git import Git
from cuda_ci.infra.github import GitHub
from cuda_ci.infra.httpclient import HttpClient, HttpUnavailable
from cuda_ci.infra.index import files_on_index
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.manifest import CiGate
from cuda_ci.infra.settings import IndexSettings, Settings
from cuda_ci.plan.rehearsal import Ref, rehearsal_detail, resolve_ref, tag_conflict
from cuda_ci.plan.tags import ReleaseTag, parse_tag
from cuda_ci.publish.window import preflight_window
from cuda_ci.validate.distfiles import DistProblem, identify

CheckStatus = Literal["passed", "failed", "not-verified", "skipped", "rehearsal"]


class CheckResult(TypedDict):
    check: str
    status: CheckStatus
    detail: str
    file: NotRequired[str]  # the repository file the check points at (an annotation's file= on Actions)
    line: NotRequired[int]


@dataclass(frozen=True, kw_only=True)
class PreflightRequest:
    tag: str | None
    component: str | None
    snapshot: bool
    dry_run: bool
    rehearse: bool = False
    ref: str | None = None

    def __post_init__(self) -> None:
        # The combination of flags is checked once, by the selection (selection.Selection.checked).
        if self.rehearse and not self.dry_run:
            raise UsageError("--rehearse needs --dry-run: a rehearsal publishes only to the embedded indexes")

    @property
    def lenient(self) -> bool:
        """A dry-run (snapshots are dry-runs) records unreachable GitHub checks as not verified."""
        return self.dry_run or self.snapshot


@dataclass
class Preflight:
    """What preflight resolved, and every check's outcome."""

    request: PreflightRequest
    unit: ReleaseUnit | None = None
    tag: ReleaseTag | None = None
    commit: str | None = None
    ref: Ref | None = None  # a rehearsal's --ref
    ci_gate: CiGate = field(default_factory=lambda: CiGate(status="not-verified", run_url=None))
    checks: list[CheckResult] = field(default_factory=list)

    def record(self, check: str, status: CheckStatus, detail: str, at: Location | None = None) -> None:
        result = CheckResult(check=check, status=status, detail=detail)
        if at is not None:
            result["file"] = at.file
            if at.line is not None:
                result["line"] = at.line
        self.checks.append(result)

    @property
    def failures(self) -> list[str]:
        return [
            Problem(f"{c['check']}: {c['detail']}", Location(c["file"], c.get("line")) if "file" in c else None)
            for c in self.checks
            if c["status"] == "failed"
        ]

    @property
    def source(self) -> BuildSource:
        assert self.unit is not None and self.commit is not None
        return BuildSource(unit=self.unit, commit=self.commit, tag=self.tag, rehearsal=self.request.rehearse)

    @property
    def where(self) -> str:
        """Where the release's sources are read: the tag, or a rehearsal's ref."""
        assert self.tag is not None
        return f"{self.ref.name} ({self.ref.commit[:12]})" if self.ref else self.tag.name

    def as_json(self) -> dict[str, object]:
        return {
            "component": self.unit.name if self.unit else None,
            "tag": self.tag.name if self.tag else None,
            "version": str(self.tag.version) if self.tag else None,
            "commit": self.commit,
            "snapshot": self.request.snapshot,
            "rehearsal": self.request.rehearse,
            "ref": self.ref.name if self.ref else None,
            "dry_run": self.request.lenient,
            "ci_gate": dict(self.ci_gate),
            "checks": [dict(c) for c in self.checks],
        }


def run_preflight(git: Git, request: PreflightRequest, settings: Settings, reporter: Reporter) -> Preflight:
    """Run every check; raise :class:`PreflightError` listing all failures, else return the result."""
    result = Preflight(request)
    if request.snapshot:
        _snapshot(git, result)
    elif request.rehearse:
        _rehearsal_checks(git, request, result)
    else:
        _tag_checks(git, request, result)
    if result.unit is not None and result.commit is not None:
        _github_checks(result, settings, reporter)
        _sibling_check(git, result, settings, reporter)
        _upload_window_check(result, settings, reporter)
    for check in result.checks:
        if check["status"] in ("not-verified", "rehearsal"):
            status = check["status"].replace("-", " ")
            reporter.note(f"preflight {check['check']}: {status} ({check['detail']})")
    if result.failures:
        raise PreflightError.from_findings(result.failures)
    return result


def _snapshot(git: Git, result: Preflight) -> None:
    assert result.request.component is not None
    result.unit = get_unit(result.request.component)
    result.commit = git.head()
    result.ci_gate = CiGate(status="snapshot", run_url=None)
    for check in ("tag", "reachable-from-main", "release-notes", "published-release", "ci-gate"):
        result.record(check, "skipped", "snapshot: no release tag")


def _parse_tag(request: PreflightRequest, result: Preflight) -> ReleaseTag | None:
    """The requested tag parsed (and its unit taken). A tag that is not a release tag is a
    :class:`TagError`, a usage error (exit 2) as for ``build``, not a finding."""
    assert request.tag is not None
    result.tag = parse_tag(request.tag, request.component)
    result.unit = result.tag.unit
    return result.tag


def missing_tag(git: Git, tag: ReleaseTag) -> str:
    """Why ``tag`` names no commit here, and what to do (the one wording, for preflight and build)."""
    kind = git.peeled_type(tag.ref)
    if kind:
        return f"tag {tag.name} names a {kind}, not a commit"
    return (
        f"tag {tag.name} does not exist in {git.root}: create it on a green main commit "
        f"(git tag -a {tag.name} <commit>) and push it, or fetch tags (git fetch --tags)"
    )


def _tag_checks(git: Git, request: PreflightRequest, result: Preflight) -> None:
    tag = _parse_tag(request, result)
    if tag is None:
        return
    commit = git.commit_of(tag.ref)
    if commit is None:
        result.record("tag", "failed", missing_tag(git, tag))
        return
    result.commit = commit
    result.record("tag", "passed", f"{tag.name} → {commit}")
    _reachable(git, result)
    _notes(git, result)


def _rehearsal_checks(git: Git, request: PreflightRequest, result: Preflight) -> None:
    """The tag's checks for a rehearsal: T parsed, REF resolved; T's existence is reported as ``rehearsal``."""
    tag = _parse_tag(request, result)
    if tag is None:
        return
    try:
        result.ref = resolve_ref(git, request.ref)
    except CudaCiError as error:
        result.record("ref", "failed", "\n".join(error.problems))
        return
    conflict = tag_conflict(git, tag, result.ref)
    if conflict:
        result.record("tag", "failed", conflict)
    else:
        result.record("tag", "rehearsal", rehearsal_detail(git, tag, result.ref))
    result.commit = result.ref.commit
    _reachable(git, result)
    _notes(git, result)


def _reachable(git: Git, result: Preflight) -> None:
    assert result.commit is not None and result.tag is not None
    main = git.main_ref()
    if main is None:
        result.record(
            "reachable-from-main",
            "failed",
            "neither main nor origin/main exists here: fetch main (git fetch origin main)",
        )
    elif git.is_ancestor(result.commit, main):
        result.record("reachable-from-main", "passed", f"{result.commit[:12]} is on {main}")
    else:
        result.record(
            "reachable-from-main",
            "failed",
            (
                f"--ref {result.ref.name} ({result.commit[:12]}) is not reachable from {main}: "
                "rehearse only commits merged to main"
                if result.ref
                else f"the commit of {result.tag.name} ({result.commit[:12]}) is not reachable from {main}: "
                "release only commits merged to main; move the tag to a main commit"
            ),
        )


def _notes(git: Git, result: Preflight) -> None:
    assert result.commit is not None and result.tag is not None and result.unit is not None
    for component in result.unit.components:
        path = component.notes_path(result.tag.notes_version)
        text = git.show(result.commit, path)
        at = Location(path, 1)  # a missing or empty file: its first line is where the notes go
        if text is None:
            result.record(
                "release-notes",
                "failed",
                f"{path} is missing at {result.where}: write it, merge it to main, and "
                + ("rehearse again" if result.ref else "tag again"),
                at,
            )
        elif not text.strip():
            result.record("release-notes", "failed", f"{path} is empty at {result.where}: write the notes", at)
        else:
            result.record("release-notes", "passed", path, at)


def _github_checks(result: Preflight, settings: Settings, reporter: Reporter) -> None:
    if result.request.snapshot:
        return
    assert result.tag is not None and result.commit is not None
    github = GitHub.from_settings(settings, reporter.info)
    if github is None:
        missing = "GITHUB_REPOSITORY" if not settings.github_repository else "GITHUB_TOKEN (or GH_TOKEN)"
        _unverified(
            result, f"{missing} is not set", fix=f"set {missing}: a full release verifies CI and releases on GitHub"
        )
        return
    try:
        runs = github.successful_ci_runs(result.commit)
        published = github.published_release(result.tag.name)
        drafts = [] if published else [r for r in github.releases() if r["tag_name"] == result.tag.name]
    except HttpUnavailable as error:
        _unverified(result, f"GitHub is out of reach ({error.problems[0]})", fix="retry when GitHub answers")
        return
    except CudaCiError as error:
        _unverified(
            result,
            f"GitHub refused ({error.problems[0]})",
            fix="check GITHUB_TOKEN's permissions (actions: read, contents: write)",
        )
        return
    if runs:
        url = str(runs[0].get("html_url", ""))
        result.ci_gate = CiGate(status="verified", run_url=url)
        result.record("ci-gate", "passed", f"ci.yml succeeded on main for {result.commit[:12]}: {url}")
    else:
        result.record(
            "ci-gate",
            "failed",
            f"no successful ci.yml run on main (push) for {result.commit[:12]}: "
            "tag a commit whose CI on main is green, "
            "or wait for that run to finish",
        )
    if published and not published["draft"]:
        result.record(
            "published-release",
            "failed",
            f"a published GitHub release of {result.tag.name} exists ({published['html_url']}): "
            "a tag is released once; "
            "cut a .postN tag instead",
        )
    elif len(drafts) > 1:
        result.record(
            "published-release",
            "failed",
            f"{len(drafts)} draft releases of {result.tag.name} exist ({', '.join(d['html_url'] for d in drafts)}): "
            "delete the extra drafts on GitHub; publish uses the one that is left",
        )
    else:
        result.record("published-release", "passed", "draft to reuse" if drafts else "no release yet")


def _unverified(result: Preflight, reason: str, *, fix: str) -> None:
    status: CheckStatus = "not-verified" if result.request.lenient else "failed"
    detail = reason if result.request.lenient else f"{reason}: {fix}"
    for check in ("ci-gate", "published-release"):
        result.record(check, status, detail)
    result.ci_gate = CiGate(status="not-verified", run_url=None)


def required_siblings(git: Git, commit: str, unit: ReleaseUnit) -> list[Requirement]:
    """The requirements the unit's components declare at ``commit`` (PEP 621 ``dependencies``, and the
    optional ones of the extras every install asks for, ``[tool.cuda-ci] install-extras``) on components
    of the registry outside the unit: what must already be on the index it goes to."""
    own = {canonicalize_name(d) for d in unit.distributions}
    requirements: list[Requirement] = []
    for component in unit.components:
        for requirement in declared_at(git, commit, component).install_requirements():
            if canonicalize_name(requirement.name) not in own and _is_sibling(requirement.name):
                requirements.append(requirement)
    return requirements


def _is_sibling(name: str) -> bool:
    try:
        get_component(str(canonicalize_name(name)))
    except CudaCiError:
        return False
    return True


def _sibling_check(git: Git, result: Preflight, settings: Settings, reporter: Reporter) -> None:
    """Every sibling the unit requires must be on every target index (for a dry-run: built here)."""
    assert result.unit is not None and result.commit is not None
    requirements = required_siblings(git, result.commit, result.unit)
    if not requirements:
        return
    if result.request.lenient:
        names = ", ".join(str(r) for r in requirements)
        result.record(
            "sibling-on-index", "not-verified", f"{names}: built from the same commit into the embedded index"
        )
        return
    http = HttpClient(on_retry=reporter.info)
    for requirement in requirements:
        for index in settings.indexes.values():
            result.record("sibling-on-index", *_sibling_on_index(http, index, requirement))


def _sibling_on_index(http: HttpClient, index: IndexSettings, requirement: Requirement) -> tuple[CheckStatus, str]:
    try:
        files = files_on_index(http, index.simple_url, requirement.name, auth=index.simple_auth)
    except CudaCiError as error:
        return "failed", f"{index.name} ({index.simple_url}) cannot be read: {error.problems[0]}"
    versions = sorted({v for f in files if (v := _version(f)) is not None})
    if any(requirement.specifier.contains(v, prereleases=True) for v in versions):
        return "passed", f"{requirement} is on {index.name}"
    return "failed", (
        f"{requirement} is not on {index.name} ({index.simple_url}; "
        f"it has {', '.join(map(str, versions)) or 'none'}): release {requirement.name} first"
    )


def _version(filename: str) -> Version | None:
    try:
        return identify(Path(filename)).version
    except DistProblem:
        return None


def _upload_window_check(result: Preflight, settings: Settings, reporter: Reporter) -> None:
    """A release's files already on TestPyPI or PyPI past their upload window (a re-run; a dry-run
    publishes to the embedded indexes, which have none)."""
    if result.request.lenient or result.tag is None:
        return
    http = HttpClient(attempts=1)  # advisory: publish reads the window again, with retries, before uploading
    now = datetime.now(UTC)
    for index in settings.indexes.values():
        window = settings.upload_window_days
        result.record(
            "upload-window",
            *preflight_window(index.name, index.simple_url, index.simple_auth, result.tag, window, http, now),
        )
