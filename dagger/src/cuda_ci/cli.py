"""The host CLI ``cuda-ci``: parses flags, renders progress, maps errors to exit codes."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence

from cuda_ci import checks, commands, process, release_status, runs, secrets
from cuda_ci.cliflags import build_parser, settings_of
from cuda_ci.errors import CudaCiError, UsageError
from cuda_ci.log import Reporter
from cuda_ci.manifest import FileEntry, ReleaseFolder, ValidationEntry
from cuda_ci.selection import Selection
from cuda_ci.settings import Settings

Handler = Callable[[argparse.Namespace, Settings, Reporter], int]


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


def _cmd_status(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    """Exit 0 only when every place of every release is complete; never writes anywhere."""
    request = release_status.StatusRequest(
        repo=args.repo, tag=args.tag, component=args.component, release_dir=args.release_dir
    )
    statuses = commands.status(request=request, settings=settings, reporter=reporter)
    if args.json:
        print(json.dumps(release_status.report_json(statuses), indent=2))
    else:
        print("\n".join(line for status in statuses for line in release_status.status_lines(status)))
    unfinished = [s.tag.name for s in statuses if not s.complete]
    if unfinished:
        raise CudaCiError(f"not finished: {', '.join(unfinished)}: run the commands under next:, in order")
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
    "status": _cmd_status,
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
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        # The one place settings are read from the environment (a wrong value is an error: line).
        settings = settings_of(args, os.environ)
        reporter = Reporter(github_actions=settings.in_github_actions, verbose=args.debug)
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
