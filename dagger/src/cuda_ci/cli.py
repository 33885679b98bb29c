"""The host CLI ``cuda-ci``: parses flags, renders progress, maps errors to exit codes."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from cuda_ci import checks, commands, components, process, runs, secrets
from cuda_ci.errors import CudaCiError, UsageError
from cuda_ci.log import Reporter
from cuda_ci.manifest import FileEntry, ReleaseFolder, ValidationEntry
from cuda_ci.selection import Selection
from cuda_ci.settings import IndexName, RunnerSettings, Settings

Handler = Callable[[argparse.Namespace, Settings, Reporter], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"error: {secrets.redact(message)}\n")
        raise SystemExit(2)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", type=Path, default=Path("."), help="the monorepo checkout (default: .)")
    parser.add_argument("--debug", action="store_true", help="show commands, their output and tracebacks")


def _release_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tag", help="the release tag, e.g. v13.0.1, cuda-core-v0.3.0, cuda-pathfinder-v1.0.0")
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
        gate = "preflight's CI gate, resolved in another container (default: not-verified, snapshot for --snapshot)"
        group.add_argument("--ci-gate", choices=["verified", "not-verified", "snapshot"], help=gate)
        group.add_argument("--ci-run-url", metavar="URL", help="the green ci.yml run of the gate")
    if "--dry-run-index" in flags:
        running = "an embedded index already running (a Dagger service) for --dry-run, NAME=URL (repeatable)"
        group.add_argument("--dry-run-index", type=_index_url, action="append", metavar="NAME=URL", help=running)


def _command(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    help: str,
    *,
    selection: bool = False,
    release_dir: bool = False,
) -> argparse.ArgumentParser:
    """One subcommand with the flags every command takes (and the shared groups it asks for)."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help)
    if selection:
        _release_selection(parser)
    if release_dir:
        parser.add_argument("--release-dir", type=Path, required=True, help="the release folder `cuda-ci build` made")
    _common(parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cuda-ci", description="Build, validate and release the CUDA Python monorepo.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    dry_run = "publish to embedded indexes and a local stand-in release"
    extra_dist = "wheels built on another platform in the same workflow run"

    p = _command(sub, "version", "print the version a component builds as at HEAD")
    p.add_argument("--component", required=True, choices=[c.distribution for c in components.COMPONENTS])

    p = _command(sub, "build", "build a release unit's sdists and wheels once, from a tag or HEAD", selection=True)
    p.add_argument("--wheels-only", action="store_true", help="only this platform's wheels (no sdist, no pure wheels)")
    p.add_argument("--out", type=Path, help="the release folder (default: .release/<tag>/)")
    _handoff(p, "--build-python", "--built-by")

    p = _command(sub, "preflight", "check that a tag may be released (all findings at once)", selection=True)
    p.add_argument("--dry-run", action="store_true", help="record unreachable GitHub checks as not verified")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")

    p = _command(sub, "validate", "check a release folder and freeze its manifest", release_dir=True)
    p.add_argument("--extra-dist", type=Path, help=extra_dist)
    p = _command(sub, "smoke", "install and import a release folder's wheels with --build-python", release_dir=True)
    _handoff(p, "--build-python")
    _command(sub, "docs", "build the release unit's docs with this run's wheels installed", release_dir=True)

    p = _command(sub, "publish", "GitHub draft and assets, TestPyPI, PyPI, un-draft (resumable)", release_dir=True)
    p.add_argument("--target", choices=["github", "testpypi", "pypi", "finalize", "all"], default="all")
    p.add_argument("--dry-run", action="store_true", help=dry_run)
    _handoff(p, "--dry-run-index")

    p = _command(sub, "release", "preflight, build once, validate, docs, publish: one run", selection=True)
    p.add_argument("--dry-run", action="store_true", help=dry_run)
    p.add_argument("--no-publish", action="store_true", help="stop after docs")
    p.add_argument("--extra-dist", type=Path, help=extra_dist)
    p.add_argument("--out", type=Path, help="the release folder (default: .release/<tag>/)")

    p = _command(sub, "verify", "check a release: SHA256SUMS, manifest, version, attestations")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--release-dir", type=Path, help="a release folder, or a folder of downloaded release assets")
    source.add_argument("--tag", help="the published release of this tag on GitHub (with --from-github)")
    p.add_argument("--from-github", action="store_true", help="download the release's assets through the GitHub API")
    _command(sub, "verify-reproducible", "rebuild the manifest's commit and compare every sha256", release_dir=True)
    _command(sub, "sign", "PEP 740 attestations of dist/ into attestations/ (GitHub Actions only)", release_dir=True)

    _command(sub, "lint", "ruff, mypy and the workflow checks (the CI lint job)")
    p = _command(sub, "test", "one CI job: build HEAD, validate, docs, the unit's tests against its wheels")
    p.add_argument("--component", required=True, choices=components.unit_names())
    p.add_argument("--out", type=Path, help="keep the tested release folder here")
    p.add_argument(
        "--group",
        action="append",
        default=[],
        metavar="NAME",
        help="also install this dependency group of the components (repeatable; e.g. one that pulls a GPU toolkit)",
    )
    _handoff(p, "--build-python")
    p = _command(sub, "ci", "lint and every test job (or one unit's)")
    p.add_argument("--component", choices=components.unit_names())
    return parser


def _selection(args: argparse.Namespace) -> Selection:
    return Selection(
        tag=args.tag, component=args.component, snapshot=args.snapshot, rehearse=args.rehearse, ref=args.ref
    )


def _print_checks(entries: Sequence[ValidationEntry]) -> None:
    for entry in entries:
        print(f"{entry['status']:>8}  {entry['check']}: {entry['file'] or ''} {entry['detail']}".rstrip())


def _cmd_version(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    print(commands.version(repo=args.repo, component=args.component))
    return 0


def _cmd_build(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    manifest, folder = commands.build(
        repo=args.repo,
        selection=_selection(args),
        wheels_only=args.wheels_only,
        out=args.out,
        settings=settings,
        reporter=reporter,
    )
    print_summary(manifest["files"])
    print(f"release folder: {folder}")
    return 0


def _cmd_preflight(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    selection = _selection(args)
    found = commands.preflight(
        repo=args.repo, selection=selection, dry_run=args.dry_run, settings=settings, reporter=reporter
    )
    if args.json:
        print(json.dumps(found.as_json(), indent=2))
    else:
        for check in found.checks:
            print(f"{check['status']:>12}  {check['check']}: {check['detail']}")
    return 0


def _cmd_validate(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    manifest = commands.validate(
        repo=args.repo, release_dir=args.release_dir, extra_dist=args.extra_dist, reporter=reporter
    )
    _print_checks(manifest.get("validation", []))
    return 0


def _cmd_smoke(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    _print_checks(commands.smoke(repo=args.repo, release_dir=args.release_dir, settings=settings, reporter=reporter))
    return 0


def _cmd_docs(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    for path in commands.docs(repo=args.repo, release_dir=args.release_dir, reporter=reporter):
        print(f"docs: {path}")
    return 0


def _cmd_publish(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    outcomes = commands.publish(
        repo=args.repo,
        release_dir=args.release_dir,
        target=args.target,
        dry_run=args.dry_run,
        settings=settings,
        reporter=reporter,
    )
    for target, outcome in outcomes.items():
        print(f"{target:>10}: {outcome}")
    dry_run = ", dry-run" if args.dry_run else ""
    print(f"published ({args.target}{dry_run}): see {args.release_dir / 'publish-log.json'}")
    return 0


def _cmd_release(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    folder = commands.release(
        repo=args.repo,
        selection=_selection(args),
        dry_run=args.dry_run,
        no_publish=args.no_publish,
        extra_dist=args.extra_dist,
        out=args.out,
        settings=settings,
        reporter=reporter,
    )
    print_summary(ReleaseFolder(folder).load()["files"])
    for stage, seconds in reporter.stage_seconds().items():
        print(f"{stage:>10}: {seconds:6.1f} s")
    print(f"release folder: {folder}")
    return 0


def _cmd_verify(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    if args.tag is not None and not args.from_github:
        raise UsageError("--tag needs --from-github (or give --release-dir)")
    report = commands.verify(release_dir=args.release_dir, tag=args.tag, settings=settings, reporter=reporter)
    for line in report.passed:
        print(f"    ok  {line}")
    for line in report.problems:
        print(f"  FAIL  {line}")
    if report.problems:
        raise CudaCiError(*report.problems, f"verify: {len(report.problems)} mismatch(es)")
    print(f"verified: {len(report.passed)} checks passed")
    return 0


def _cmd_verify_reproducible(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    results = commands.verify_reproducible(repo=args.repo, release_dir=args.release_dir, reporter=reporter)
    for result in results:
        print(f"{result.status:>12}  {result.name}: {result.detail}")
    different = [r for r in results if r.status == "different"]
    if different:
        raise CudaCiError(*(f"{r.name} is not reproducible: {r.detail}" for r in different))
    return 0


def _cmd_sign(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    for path in commands.sign(release_dir=args.release_dir, settings=settings, reporter=reporter):
        print(f"attestation: {path}")
    return 0


def _report_jobs(results: Sequence[checks.JobResult]) -> int:
    for result in results:
        print(f"{'passed' if result.ok else 'FAILED':>8}  {result.name}: {(result.detail.splitlines() or [''])[0]}")
    failed = [r for r in results if not r.ok]
    if failed:
        raise CudaCiError(*(f"{r.name} failed:\n{r.detail}" for r in failed))
    return 0


def _cmd_lint(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    return _report_jobs(commands.lint(repo=args.repo, reporter=reporter))


def _cmd_test(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    if args.out is not None:
        ReleaseFolder.fresh(args.out)  # the tested folder is copied there: nothing of the user's is overwritten
    job = commands.ci_test(
        repo=args.repo, component=args.component, out=args.out, groups=args.group, settings=settings, reporter=reporter
    )
    return _report_jobs([job])


def _cmd_ci(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    return _report_jobs(commands.ci(repo=args.repo, component=args.component, settings=settings, reporter=reporter))


def settings_of(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """The run's one :class:`Settings`: the environment's, and the Dagger hand-off flags' (``runner``)."""
    urls: dict[IndexName, str] = dict(getattr(args, "dry_run_index", None) or [])
    runner = RunnerSettings(
        built_by=getattr(args, "built_by", "host"),
        prebuilt_wheels=str(args.prebuilt_wheels) if getattr(args, "prebuilt_wheels", None) else None,
        build_python=getattr(args, "build_python", None),
        ci_gate=getattr(args, "ci_gate", None),
        ci_run_url=getattr(args, "ci_run_url", None),
        dry_run_index_urls=urls or None,
    )
    return Settings.from_environ(environ, runner=runner)


HANDLERS: dict[str, Handler] = {
    "version": _cmd_version,
    "build": _cmd_build,
    "preflight": _cmd_preflight,
    "validate": _cmd_validate,
    "smoke": _cmd_smoke,
    "docs": _cmd_docs,
    "publish": _cmd_publish,
    "release": _cmd_release,
    "verify": _cmd_verify,
    "verify-reproducible": _cmd_verify_reproducible,
    "sign": _cmd_sign,
    "lint": _cmd_lint,
    "test": _cmd_test,
    "ci": _cmd_ci,
}


def print_summary(files: Sequence[FileEntry]) -> None:
    """The closing table of artifacts: file, size, sha256."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="artifacts")
    for column in ("file", "size", "sha256"):
        table.add_column(column)
    for entry in files:
        table.add_row(entry["path"], f"{entry['size']:,}", entry["sha256"])
    Console(width=max(160, 40 + max((len(f["path"]) for f in files), default=0) + 64)).print(table)


class Terminated(BaseException):
    """SIGTERM: unwind like an interrupt, so that every child, server and temporary folder goes."""


def _on_sigterm(signum: int, frame: object) -> None:
    process.stop_children()
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    secrets.register_environment()
    settings = settings_of(args, os.environ)  # the one place settings are read from the environment
    reporter = Reporter(github_actions=settings.in_github_actions, verbose=args.debug)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        with runs.run_folder(reporter):
            return HANDLERS[args.command](args, settings, reporter)
    except CudaCiError as error:
        if args.debug:
            sys.stderr.write(secrets.redact(traceback.format_exc()))
        for problem in error.problems:
            lines = secrets.redact(problem).splitlines() or [""]
            sys.stderr.write(f"error: {lines[0]}\n" + "".join(f"  {line}\n" for line in lines[1:]))
        return error.exit_code
    except Exception as error:  # a bug: say so plainly, without secrets
        if args.debug:
            sys.stderr.write(secrets.redact(traceback.format_exc()))
        translated = commands.translate(error)
        if translated is not None:
            sys.stderr.write(f"error: {secrets.redact(translated.problems[0])}\n")
            return translated.exit_code
        sys.stderr.write(
            f"error: internal error: {secrets.redact(f'{type(error).__name__}: {error}')} (run with --debug)\n"
        )
        return 1
    except Terminated:
        sys.stderr.write("error: terminated (SIGTERM): every subprocess and embedded index was stopped\n")
        return 143
    except KeyboardInterrupt:
        process.stop_children()
        sys.stderr.write("error: interrupted\n")
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
