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
from typing import Any

from cuda_ci import checks, commands, credentials, hostrun, process, runs, secrets, toolenvs
from cuda_ci.cliflags import build_parser, cache_trust, settings_of
from cuda_ci.errors import CudaCiError, UsageError
from cuda_ci.hostrun import NODE_COMMANDS, run_parsed_node, selection_of
from cuda_ci.log import Reporter
from cuda_ci.manifest import FileEntry, ReleaseFolder, ValidationEntry
from cuda_ci.plan import PlanOptions, ReleasePlan
from cuda_ci.settings import Settings

Handler = Callable[[argparse.Namespace, Settings, Reporter], int]


def _print_checks(entries: Sequence[ValidationEntry]) -> None:
    for entry in entries:
        print(f"{entry['status']:>8}  {entry['check']}: {entry['file'] or ''} {entry['detail']}".rstrip())


def _cmd_version(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    print(commands.version(repo=args.repo, component=args.component))
    return 0


def _cmd_build(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    manifest, folder = NODE_COMMANDS["build"](args, settings, reporter)
    print_summary(manifest["files"])
    print(f"release folder: {folder}")
    return 0


def _cmd_preflight(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    found = NODE_COMMANDS["preflight"](args, settings, reporter)
    if args.json:
        print(json.dumps(found.as_json(), indent=2))
    else:
        for check in found.checks:
            print(f"{check['status']:>12}  {check['check']}: {check['detail']}")
    return 0


def _cmd_plan(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    options = PlanOptions(
        runner=args.runner, dry_run=args.dry_run, no_publish=args.no_publish, extra_dist=args.extra_dist
    )
    decided = commands.plan(repo=args.repo, selection=selection_of(args), options=options, reporter=reporter)
    if args.json:
        print(json.dumps(decided.as_json(), indent=2))
    else:
        print_plan(decided)
    return 0


def _cmd_validate(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    manifest = NODE_COMMANDS["validate"](args, settings, reporter)
    _print_checks(manifest.get("validation", []))
    return 0


def _cmd_smoke(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    _print_checks(NODE_COMMANDS["smoke"](args, settings, reporter))
    return 0


def _cmd_docs(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    for path in NODE_COMMANDS["docs"](args, settings, reporter):
        print(f"docs: {path}")
    return 0


def _cmd_record_docs(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    result = NODE_COMMANDS["record-docs"](args, settings, reporter)
    print(f"docs: {result['status']} ({result['detail']})")
    return 0


def _cmd_publish(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    outcomes = NODE_COMMANDS["publish"](args, settings, reporter)
    for target, outcome in outcomes.items():
        print(f"{target:>10}: {outcome}")
    dry_run = ", dry-run" if args.dry_run else ""
    print(f"published ({args.target}{dry_run}): see {args.release_dir / 'publish-log.json'}")
    return 0


def _cmd_release(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    folder = hostrun.release(
        repo=args.repo,
        selection=selection_of(args),
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


HANDLERS: dict[str, Handler] = {
    "version": _cmd_version,
    "plan": _cmd_plan,
    "build": _cmd_build,
    "preflight": _cmd_preflight,
    "validate": _cmd_validate,
    "smoke": _cmd_smoke,
    "docs": _cmd_docs,
    "record-docs": _cmd_record_docs,
    "publish": _cmd_publish,
    "release": _cmd_release,
    "verify": _cmd_verify,
    "verify-reproducible": _cmd_verify_reproducible,
    "sign": _cmd_sign,
    "lint": _cmd_lint,
    "test": _cmd_test,
    "ci": _cmd_ci,
}


def print_plan(plan: ReleasePlan) -> None:
    """The plan for people: the source, then each node in order with what it waits for."""
    source = plan.source
    versions = ", ".join(f"{d} {v}" for d, v in source.versions.items())
    print(f"{source.mode} of {source.unit} ({source.tag or 'no tag'}) at {source.commit}: {versions}")
    print(f"runner: {plan.runner}; dry-run: {'yes' if plan.dry_run else 'no'}; folder: .release/{plan.folder}")
    if source.siblings:
        print(f"siblings (built from the same commit): {', '.join(source.siblings)}")
    for wave, nodes in enumerate(plan.waves(), start=1):
        for node in nodes:
            after = f"  (after {', '.join(node.needs)})" if node.needs else ""
            print(f"{wave:>3}. {node.id}: cuda-ci {' '.join(node.argv)}{after}")


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


def _run_command(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> int:
    if args.node:  # a node of a release plan, run by the Dagger module in its own container
        return int(run_parsed_node(args.node, args, settings, reporter, HANDLERS[args.command]))
    return HANDLERS[args.command](args, settings, reporter)


def _environment(own_process: bool) -> dict[str, str]:
    """This run's environment: as a process of its own (the console script), cuda-ci first runs
    itself again without the credentials in its environment block (:mod:`cuda_ci.credentials`)."""
    if own_process:
        credentials.reexec_without_secrets()
    environ = {**os.environ, **credentials.received_secrets()}
    secrets.register_environment(environ)
    return environ


def _on_sigint(signum: int, frame: object) -> None:
    """Children run in their own process groups, so a terminal's Ctrl-C reaches cuda-ci alone: it
    ends their groups before unwinding (a thread's child would otherwise keep the run waiting)."""
    process.stop_children()
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    try:
        environ = _environment(own_process=argv is None)
    except credentials.HandoffError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    return _run(argv, environ)


def _run(argv: Sequence[str] | None, environ: dict[str, str]) -> int:
    args = build_parser().parse_args(argv)
    settings = settings_of(args, environ)  # the one place settings are read from the environment
    reporter = Reporter(github_actions=settings.in_github_actions, verbose=args.debug)
    main_thread = threading.current_thread() is threading.main_thread()
    process.allow_children()
    previous = _install_handlers() if main_thread else {}
    try:
        with runs.run_folder(reporter), toolenvs.cache_namespace(cache_trust(args)):
            return _run_command(args, settings, reporter)
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
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def _install_handlers() -> dict[signal.Signals, Any]:
    """SIGTERM and SIGINT end every child's group; the handlers they replace, to put back. A SIGINT
    that is ignored (a job started in the background) stays ignored."""
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _on_sigterm)}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, _on_sigint)
    return previous
