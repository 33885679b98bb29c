"""The host CLI ``cuda-ci``: parses flags, renders progress, maps errors to exit codes."""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from cuda_ci import checks, components, process, runs, secrets, stages
from cuda_ci.errors import CudaCiError, UsageError
from cuda_ci.log import Reporter
from cuda_ci.manifest import FileEntry, ReleaseFolder
from cuda_ci.preflight import PreflightRequest
from cuda_ci.settings import Settings

Handler = Callable[[argparse.Namespace, Reporter], int]


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

    p = _command(sub, "preflight", "check that a tag may be released (all findings at once)", selection=True)
    p.add_argument("--dry-run", action="store_true", help="record unreachable GitHub checks as not verified")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")

    p = _command(sub, "validate", "check a release folder and freeze its manifest", release_dir=True)
    p.add_argument("--extra-dist", type=Path, help=extra_dist)
    _command(sub, "smoke", "install and import a release folder's wheels with CUDA_CI_BUILD_PYTHON", release_dir=True)
    _command(sub, "docs", "build the release unit's docs with this run's wheels installed", release_dir=True)

    p = _command(sub, "publish", "GitHub draft and assets, TestPyPI, PyPI, un-draft (resumable)", release_dir=True)
    p.add_argument("--target", choices=["github", "testpypi", "pypi", "finalize", "all"], default="all")
    p.add_argument("--dry-run", action="store_true", help=dry_run)

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
    p = _command(sub, "ci", "lint and every test job (or one unit's)")
    p.add_argument("--component", choices=components.unit_names())
    return parser


def _selection(args: argparse.Namespace) -> None:
    if args.snapshot and args.tag is not None:
        raise UsageError("--snapshot and --tag exclude each other: a snapshot builds HEAD without a tag")
    if args.snapshot and not args.component:
        raise UsageError("--snapshot needs --component (one of " + ", ".join(components.unit_names()) + ")")
    if not args.snapshot and args.tag is None:
        raise UsageError("give --tag TAG, or --snapshot --component C")
    if args.rehearse and args.snapshot:
        raise UsageError("--rehearse and --snapshot exclude each other: a rehearsal builds --ref as if --tag named it")
    if args.ref is not None and not args.rehearse:
        raise UsageError("--ref needs --rehearse: a release builds its tag's commit, a snapshot HEAD")


def _cmd_version(args: argparse.Namespace, reporter: Reporter) -> int:
    from cuda_ci.git import Git
    from cuda_ci.scm import component_version

    git = Git.open(args.repo)
    if git.is_shallow():
        raise CudaCiError(f"{git.root} is a shallow clone: fetch the full history (git fetch --unshallow)")
    with git.worktree(git.head()) as tree:
        print(component_version(tree, components.get_component(args.component)))
    return 0


def _cmd_build(args: argparse.Namespace, reporter: Reporter) -> int:
    _selection(args)
    manifest, folder = stages.build_only(
        repo=args.repo,
        tag=args.tag,
        component=args.component,
        wheels_only=args.wheels_only,
        out=args.out,
        runner=_settings().runner,
        reporter=reporter,
        rehearse=args.rehearse,
        ref=args.ref,
    )
    print_summary(manifest["files"])
    print(f"release folder: {folder}")
    return 0


def _request(args: argparse.Namespace) -> PreflightRequest:
    _selection(args)
    return PreflightRequest(
        tag=args.tag,
        component=args.component,
        snapshot=args.snapshot,
        dry_run=args.dry_run,
        rehearse=args.rehearse,
        ref=args.ref,
    )


def _cmd_preflight(args: argparse.Namespace, reporter: Reporter) -> int:
    found = stages.preflight(repo=args.repo, request=_request(args), settings=_settings(), reporter=reporter)
    if args.json:
        print(json.dumps(found.as_json(), indent=2))
    else:
        for check in found.checks:
            print(f"{check['status']:>12}  {check['check']}: {check['detail']}")
    return 0


def _cmd_validate(args: argparse.Namespace, reporter: Reporter) -> int:
    manifest = stages.validate(
        repo=args.repo, release_dir=args.release_dir, extra_dist=args.extra_dist, reporter=reporter
    )
    for entry in manifest.get("validation", []):
        print(f"{entry['status']:>8}  {entry['check']}: {entry['file'] or ''} {entry['detail']}".rstrip())
    return 0


def _cmd_smoke(args: argparse.Namespace, reporter: Reporter) -> int:
    for entry in stages.smoke(repo=args.repo, release_dir=args.release_dir, settings=_settings(), reporter=reporter):
        print(f"{entry['status']:>8}  {entry['check']}: {entry['file'] or ''} {entry['detail']}".rstrip())
    return 0


def _cmd_docs(args: argparse.Namespace, reporter: Reporter) -> int:
    for path in stages.docs(repo=args.repo, release_dir=args.release_dir, reporter=reporter):
        print(f"docs: {path}")
    return 0


def _cmd_publish(args: argparse.Namespace, reporter: Reporter) -> int:
    outcomes = stages.publish(
        repo=args.repo,
        release_dir=args.release_dir,
        target=args.target,
        dry_run=args.dry_run,
        settings=_settings(),
        reporter=reporter,
    )
    for target, outcome in outcomes.items():
        print(f"{target:>10}: {outcome}")
    print(
        f"published ({args.target}{', dry-run' if args.dry_run else ''}): see {args.release_dir / 'publish-log.json'}"
    )
    return 0


def _cmd_release(args: argparse.Namespace, reporter: Reporter) -> int:
    folder = stages.release(
        repo=args.repo,
        request=_request(args),
        no_publish=args.no_publish,
        extra_dist=args.extra_dist,
        out=args.out,
        settings=_settings(),
        reporter=reporter,
    )
    manifest = ReleaseFolder(folder).load()
    print_summary(manifest["files"])
    for stage, seconds in reporter.stage_seconds().items():
        print(f"{stage:>10}: {seconds:6.1f} s")
    print(f"release folder: {folder}")
    return 0


def _report_jobs(results: Sequence[checks.JobResult]) -> int:
    for result in results:
        print(f"{'passed' if result.ok else 'FAILED':>8}  {result.name}: {(result.detail.splitlines() or [''])[0]}")
    failed = [r for r in results if not r.ok]
    if failed:
        raise CudaCiError(*(f"{r.name} failed:\n{r.detail}" for r in failed))
    return 0


def _cmd_verify(args: argparse.Namespace, reporter: Reporter) -> int:
    from cuda_ci import verify

    if args.tag is not None:
        if not args.from_github:
            raise UsageError("--tag needs --from-github (or give --release-dir)")
        report = verify.verify_from_github(stages.github_reader(_settings(), reporter), args.tag)
    else:
        if not args.release_dir.is_dir():
            raise UsageError(f"--release-dir {str(args.release_dir)!r} does not exist or is not a directory")
        report = verify.verify_folder(args.release_dir)
    for line in report.passed:
        print(f"    ok  {line}")
    for line in report.problems:
        print(f"  FAIL  {line}")
    if report.problems:
        raise CudaCiError(*report.problems, f"verify: {len(report.problems)} mismatch(es)")
    print(f"verified: {len(report.passed)} checks passed")
    return 0


def _cmd_verify_reproducible(args: argparse.Namespace, reporter: Reporter) -> int:
    from cuda_ci.manifest import ReleaseFolder as Folder
    from cuda_ci.reproducible import verify_reproducible

    results = verify_reproducible(Folder.existing(args.release_dir), args.repo, reporter)
    for result in results:
        print(f"{result.status:>12}  {result.name}: {result.detail}")
    different = [r for r in results if r.status == "different"]
    if different:
        raise CudaCiError(*(f"{r.name} is not reproducible: {r.detail}" for r in different))
    return 0


def _cmd_sign(args: argparse.Namespace, reporter: Reporter) -> int:
    from cuda_ci.manifest import ReleaseFolder as Folder
    from cuda_ci.provenance import sign_release

    for path in sign_release(Folder.existing(args.release_dir), os.environ, reporter):
        print(f"attestation: {path}")
    return 0


def _cmd_lint(args: argparse.Namespace, reporter: Reporter) -> int:
    return _report_jobs(checks.lint(args.repo, reporter))


def _cmd_test(args: argparse.Namespace, reporter: Reporter) -> int:
    if args.out is not None:
        ReleaseFolder.fresh(args.out)  # the tested folder is copied there: nothing of the user's is overwritten
    job = checks.run_test_job(args.repo, args.component, _settings().runner, reporter, args.out, args.group)
    return _report_jobs([job])


def _cmd_ci(args: argparse.Namespace, reporter: Reporter) -> int:
    return _report_jobs(checks.ci(args.repo, args.component, _settings().runner, reporter))


def _settings() -> Settings:
    return Settings.from_environ(os.environ)


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


def _disk_full(error: OSError, reporter: Reporter) -> str:
    """Which stage and file ran out of space, and what to free (no partial file was left complete)."""
    stage = next((r.stage for r in reversed(reporter.steps) if r.status == "failed" and r.stage), "")
    where = Path(str(error.filename)) if error.filename else None
    place = f" writing {where}" if where else ""
    target = where.parent if where else Path(".")
    return (
        f"error: no space left on device in stage {stage or 'setup'}{place}: free space on the filesystem "
        f"holding {target} (df -h {target}), or point --out, TMPDIR or CUDA_CI_CACHE_DIR at one with room, "
        "then run again; no partial file was left under a final name\n"
    )


class Terminated(BaseException):
    """SIGTERM: unwind like an interrupt, so that every child, server and temporary folder goes."""


def _on_sigterm(signum: int, frame: object) -> None:
    process.stop_children()
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    secrets.register_environment()
    reporter = Reporter(github_actions=os.environ.get("GITHUB_ACTIONS") == "true", verbose=args.debug)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        with runs.run_folder(reporter):
            return HANDLERS[args.command](args, reporter)
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
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            sys.stderr.write(secrets.redact(_disk_full(error, reporter)))
            return 1
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
