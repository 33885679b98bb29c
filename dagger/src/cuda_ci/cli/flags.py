"""The CLI's flags: the parser of every ``cuda-ci`` command (the Dagger hand-off flags included),
and the one :class:`Settings` a run makes from them and the environment."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import TypeAlias

from cuda_ci.cli.descriptions import DESCRIPTIONS
from cuda_ci.infra import components, secrets
from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.manifest import ReleaseFolder
from cuda_ci.infra.settings import IndexName, RunnerSettings, Settings
from cuda_ci.infra.toolenvs import Trust
from cuda_ci.publish.targets import BOTH_PHASES, IndexPhase


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"error: {secrets.redact(message)}\n")
        raise SystemExit(2)


# Old command names still accepted, each with a warning naming the new one.
DEPRECATED_ALIASES = {"version": "component-version"}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", type=Path, default=Path("."), help="the monorepo checkout (default: .)")
    parser.add_argument("--debug", action="store_true", help="show commands, their output and tracebacks")
    json_help = "print the result as one JSON document (schemas/<command>.schema.json), even on failure"
    parser.add_argument("--json", action="store_true", help=json_help)
    node = "run as this node of a release plan: logs/ID.json and run-log.json in the release folder"
    parser.add_argument("--node", metavar="ID", help=node)


def _release_selection(parser: argparse.ArgumentParser) -> None:
    patterns = ", ".join(f"{unit.tag_prefix}X.Y.Z" for unit in components.UNITS)
    parser.add_argument("--tag", help=f"the release tag: {patterns}")
    parser.add_argument("--component", choices=components.unit_names(), help="the release unit")
    parser.add_argument("--snapshot", action="store_true", help="build HEAD as a dev version (implies --dry-run)")
    rehearse = "build --ref as if --tag pointed at it (with --dry-run; the tag need not exist)"
    parser.add_argument("--rehearse", action="store_true", help=rehearse)
    parser.add_argument("--ref", help="the commit a rehearsal builds: a branch, tag or commit (default: main's head)")


HANDOFF = "Dagger hand-off (what the Dagger module's containers pass; the host CLI leaves them unset)"


def _index_url(text: str) -> tuple[IndexName, str]:
    name, sep, url = text.partition("=")
    if not sep or name not in ("testpypi", "pypi") or not url:
        raise argparse.ArgumentTypeError(f"expected testpypi=URL or pypi=URL, not {text!r}")
    return name, url  # type: ignore[return-value]


def _handoff(parser: argparse.ArgumentParser, *flags: str) -> None:
    """The flags ``main.py`` passes to ``cuda-ci`` in its containers: the Dagger → CLI contract."""
    group = parser.add_argument_group(HANDOFF)
    if "--build-python" in flags:
        group.add_argument("--build-python", metavar="PYTHON", help="the interpreter that builds or smoke-tests wheels")
    if "--built-by" in flags:
        group.add_argument("--built-by", choices=["host", "dagger"], default="host", help="the manifest's built_by")
        prebuilt = "Linux wheels already built and repaired per cibuildwheel identifier (taken instead of building)"
        group.add_argument("--prebuilt-wheels", type=Path, metavar="DIR", help=prebuilt)
        reports = "the sha256 each wheel job reported for --prebuilt-wheels (their job outputs as JSON)"
        group.add_argument("--wheel-reports", type=Path, metavar="FILE", help=reports)
        gate = "preflight's --out JSON: its CI gate and the commit it checked (default: not-verified; snapshot)"
        group.add_argument("--preflight-result", type=Path, metavar="FILE", help=gate)
    if "--dry-run-index" in flags:
        running = "an embedded index already running (a Dagger service) for --dry-run, NAME=URL (repeatable)"
        group.add_argument("--dry-run-index", type=_index_url, action="append", metavar="NAME=URL", help=running)


def _fan_out_plan(parser: argparse.ArgumentParser) -> None:
    """``plan``'s flags for a fanned-out workflow: wheels from earlier jobs, a pull request's subset."""
    prebuilt = "the Linux wheels come from the workflow's wheel jobs (--prebuilt): no wheel nodes"
    parser.add_argument("--prebuilt", action="store_true", help=prebuilt)
    subset = "a pull request's merge base: the matrix builds one identifier per group unless a build input changed"
    parser.add_argument("--pull-request-base", metavar="REF", help=subset)


def _check_wheels(parser: argparse.ArgumentParser) -> None:
    """``check-wheels``: a wheel job's report of its group, or the assembling job's check of every wheel."""
    parser.add_argument("--plan", type=Path, required=True, metavar="FILE", help="`cuda-ci plan --json`'s output")
    wheels = "a folder of wheels (repeatable: every wheel job's artifact)"
    parser.add_argument("--wheels", type=Path, action="append", required=True, metavar="DIR", help=wheels)
    role = parser.add_mutually_exclusive_group(required=True)
    group = "in a wheel job: check its group's wheels, report their sha256 (step output wheels-<GROUP>)"
    role.add_argument("--group", metavar="GROUP", help=group)
    reports = "in the assembling job: the wheel jobs' outputs as JSON; refuse any wheel they did not report"
    role.add_argument("--reports", type=Path, metavar="FILE", help=reports)


def _publish_phases(parser: argparse.ArgumentParser) -> None:
    """An index target's upload and install-back, apart: one job holds the credentials, the next
    runs the installed code (see :func:`publish_phases`)."""
    phase = parser.add_mutually_exclusive_group()
    no_install = "upload and check what the index serves, but install nothing back (a job holding the credentials)"
    phase.add_argument("--no-install-back", action="store_true", help=no_install)
    only = "only check what the index serves and install the release back (no credentials; testpypi or pypi)"
    phase.add_argument("--install-back-only", action="store_true", help=only)


def _command(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    help: str,
    *,
    selection: bool = False,
    release_dir: bool = False,
    aliases: tuple[str, ...] = (),
) -> argparse.ArgumentParser:
    """One subcommand with the flags every command takes (and the shared groups it asks for)."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help, description=DESCRIPTIONS.get(name), aliases=list(aliases)
    )
    if selection:
        _release_selection(parser)
    if release_dir:
        parser.add_argument("--release-dir", type=Path, required=True, help="the release folder `cuda-ci build` made")
    _common(parser)
    return parser


DRY_RUN = "publish to embedded indexes and a local stand-in release"
EXTRA_DIST = "wheels built on another platform in the same workflow run"
Subparsers: TypeAlias = "argparse._SubParsersAction[_Parser]"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cuda-ci", description="Build, validate and release the CUDA Python monorepo.")
    own = f"cuda-ci {metadata.version('cuda-ci')}"  # from its git tags, cuda-ci-vX.Y.Z (dagger/pyproject.toml)
    parser.add_argument("--version", action="version", version=own, help="print cuda-ci's own version and exit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = _command(
        sub,
        "component-version",
        "print the version a component builds as at HEAD (`version`: deprecated alias)",
        aliases=tuple(old for old, new in DEPRECATED_ALIASES.items() if new == "component-version"),
    )
    distributions = [c.distribution for c in components.COMPONENTS]
    p.add_argument("--component", required=True, choices=distributions, help="the distribution")
    _release_commands(sub)
    _folder_commands(sub)
    _ci_commands(sub)
    return parser


def _release_commands(sub: Subparsers) -> None:
    """The commands that take a selection: plan, preflight, build, release."""
    what = "what a release will build, check and publish, and where (writes nothing)"
    p = _command(sub, "plan", what, selection=True)
    p.add_argument("--dry-run", action="store_true", help=DRY_RUN)
    p.add_argument("--no-publish", action="store_true", help="stop after docs")
    p.add_argument("--extra-dist", action="store_true", help="wheels from another platform will join validate")
    runner = "the executor: host (this machine, cuda-ci release) or dagger (the module's containers)"
    p.add_argument("--runner", choices=["host", "dagger"], default="host", help=runner)
    _fan_out_plan(p)

    p = _command(sub, "preflight", "check that a tag may be released (all findings at once)", selection=True)
    p.add_argument("--dry-run", action="store_true", help="record unreachable GitHub checks as not verified")
    p.add_argument("--out", type=Path, metavar="FILE", help="also write the findings as JSON to FILE (for build)")

    p = _command(sub, "build", "build a release unit's sdists and wheels once, from a tag or HEAD", selection=True)
    p.add_argument("--wheels-only", action="store_true", help="only this platform's wheels (no sdist, no pure wheels)")
    p.add_argument("--out", type=Path, help="the release folder (default: .release/<tag>/)")
    _handoff(p, "--build-python", "--built-by")

    p = _command(sub, "release", "preflight, build once, validate, docs, publish: one run", selection=True)
    p.add_argument("--dry-run", action="store_true", help=DRY_RUN)
    p.add_argument("--no-publish", action="store_true", help="stop after docs")
    p.add_argument("--extra-dist", type=Path, help=EXTRA_DIST)
    p.add_argument("--out", type=Path, help="the release folder (default: .release/<tag>/)")
    prebuilt = "Linux wheels built by the wheel jobs of this workflow run (checked against the plan), not built here"
    p.add_argument("--prebuilt", type=Path, metavar="DIR", help=prebuilt)
    reports = "with --prebuilt: the wheel jobs' outputs as JSON (each file's sha256, the commit it was built from)"
    p.add_argument("--wheel-reports", type=Path, metavar="FILE", help=reports)

    p = _command(sub, "check-wheels", "check wheels from other jobs of this run against the plan and their sha256")
    _check_wheels(p)


def _folder_commands(sub: Subparsers) -> None:
    """The commands that take a release folder: validate, smoke, docs, record-docs, publish, verify, sign, report,
    status."""
    p = _command(sub, "validate", "check a release folder and freeze its manifest", release_dir=True)
    p.add_argument("--extra-dist", type=Path, help=EXTRA_DIST)
    p = _command(sub, "smoke", "install and import a release folder's wheels with --build-python", release_dir=True)
    _handoff(p, "--build-python")
    p = _command(sub, "docs", "build the release unit's docs with this run's wheels installed", release_dir=True)
    beside = "run beside validate: the outcome goes to docs-outcome.json until record-docs"
    p.add_argument("--beside-validate", action="store_true", help=beside)
    recorded = "record docs' outcome in the validated manifest (after docs and validate)"
    _command(sub, "record-docs", recorded, release_dir=True)

    p = _command(sub, "publish", "GitHub draft and assets, TestPyPI, PyPI, un-draft (resumable)", release_dir=True)
    p.add_argument("--target", choices=["github", "testpypi", "pypi", "finalize", "all"], default="all")
    p.add_argument("--dry-run", action="store_true", help=DRY_RUN)
    _publish_phases(p)
    _handoff(p, "--dry-run-index")

    p = _command(sub, "verify", "check a release: SHA256SUMS, manifest, version, attestations")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--release-dir", type=Path, help="a release folder, or a folder of downloaded release assets")
    source.add_argument("--tag", help="the published release of this tag on GitHub (with --from-github)")
    p.add_argument("--from-github", action="store_true", help="download the release's assets through the GitHub API")
    _command(sub, "verify-reproducible", "rebuild the manifest's commit and compare every sha256", release_dir=True)
    _command(sub, "sign", "PEP 740 attestations of dist/ into attestations/ (GitHub Actions only)", release_dir=True)

    reported = "report a run's folder (dagger call release --keep-failed); fails when the run did"
    p = _command(sub, "report", reported, release_dir=True)
    p.add_argument("--dry-run", action="store_true", help="the run was a dry-run (its links: the embedded indexes)")

    p = _command(sub, "status", "where a release stands: tag, GitHub release, TestPyPI, PyPI (read only)")
    p.add_argument("--tag", help="this release (default: every unit's newest tag)")
    p.add_argument("--component", choices=components.unit_names(), help="the unit's newest tag")
    p.add_argument("--release-dir", type=Path, help="compare with this release folder's manifest")


def _ci_commands(sub: Subparsers) -> None:
    """The CI jobs: lint, test, ci."""
    _command(sub, "lint", "ruff, mypy and the workflow checks (the CI lint job)")
    p = _command(sub, "test", "one CI job: build HEAD, validate, docs, the unit's tests against its wheels")
    p.add_argument("--component", required=True, choices=components.unit_names())
    p.add_argument("--out", type=Path, help="keep the tested release folder here")
    groups = "also install this dependency group of the components (repeatable; e.g. one that pulls a GPU toolkit)"
    p.add_argument("--group", action="append", default=[], metavar="NAME", help=groups)
    _handoff(p, "--build-python")
    p = _command(sub, "ci", "lint and every test job (or one unit's)")
    p.add_argument("--component", choices=components.unit_names())


def runner_of(args: argparse.Namespace) -> RunnerSettings:
    """The Dagger hand-off flags of one command line."""
    urls: dict[IndexName, str] = dict(getattr(args, "dry_run_index", None) or [])
    return RunnerSettings(
        built_by=getattr(args, "built_by", "host"),
        prebuilt_wheels=str(args.prebuilt_wheels) if getattr(args, "prebuilt_wheels", None) else None,
        wheel_reports=str(args.wheel_reports) if getattr(args, "wheel_reports", None) else None,
        build_python=getattr(args, "build_python", None),
        preflight_result=str(args.preflight_result) if getattr(args, "preflight_result", None) else None,
        dry_run_index_urls=urls or None,
    )


def settings_of(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """The run's one :class:`Settings`: the environment's, and the Dagger hand-off flags' (``runner``)."""
    return Settings.from_environ(environ, runner=runner_of(args))


def publish_phases(args: argparse.Namespace) -> tuple[IndexPhase, ...]:
    """``publish``'s phases of an index target: both, unless ``--no-install-back`` or ``--install-back-only``."""
    if args.no_install_back:
        return ("upload",)
    if args.install_back_only:
        return ("install-back",)
    return BOTH_PHASES


def cache_trust(args: argparse.Namespace) -> Trust:
    """Whose kept environments a command uses: a release's (a tag, a rehearsal, or a release folder
    that is no snapshot's), or untrusted work's (``test``, ``ci``, snapshots of any branch)."""
    if getattr(args, "tag", None) and not getattr(args, "snapshot", False):
        return "release"
    release_dir = getattr(args, "release_dir", None)
    if release_dir is None or args.command == "verify":
        return "untrusted"
    try:
        snapshot = ReleaseFolder(release_dir).load()["snapshot"]
    except (CudaCiError, OSError):  # the command itself says what is wrong with the folder
        return "untrusted"
    return "untrusted" if snapshot else "release"
