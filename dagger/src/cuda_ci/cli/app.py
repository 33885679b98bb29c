"""The host CLI ``cuda-ci``: parses flags, renders progress, maps errors to exit codes.

Each handler runs its command and returns a :class:`~cuda_ci.cli.results.Result`; :func:`main` reports it
(text or ``--json`` on stdout, ``error:`` lines on stderr, on GitHub Actions annotations, the job
summary and the step outputs: :mod:`cuda_ci.cli.report`).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from cuda_ci.ci import jobs as checks
from cuda_ci.cli import commands, fanout
from cuda_ci.cli import report as clireport
from cuda_ci.cli.flags import DEPRECATED_ALIASES, build_parser, cache_trust, settings_of
from cuda_ci.cli.results import Result, document, folder_facts, publish_targets
from cuda_ci.executors import host as hostrun
from cuda_ci.executors.host import NODE_COMMANDS, run_parsed_node, selection_of
from cuda_ci.infra import credentials, process, secrets, toolenvs
from cuda_ci.infra import run_folders as runs
from cuda_ci.infra.errors import CudaCiError, Problem, UsageError
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.manifest import ReleaseFolder, ValidationEntry
from cuda_ci.infra.settings import Settings
from cuda_ci.plan.release import PlanOptions, ReleasePlan
from cuda_ci.publish import status as release_status
from cuda_ci.publish.publish_log import PublishLog

Handler = Callable[[argparse.Namespace, Settings, Reporter], Result]


def _check_lines(entries: Sequence[ValidationEntry]) -> list[str]:
    return [f"{e['status']:>8}  {e['check']}: {e['file'] or ''} {e['detail']}".rstrip() for e in entries]


def _cmd_component_version(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> Result:
    version = commands.component_version(repo=args.repo, component=args.component)
    return Result({"component": args.component, "version": version}, [version])


def _cmd_build(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> Result:
    manifest, folder = NODE_COMMANDS["build"](args, settings, reporter)
    return Result(folder_facts(folder), [f"release folder: {folder}"], manifest["files"])


def _cmd_preflight(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> Result:
    found = NODE_COMMANDS["preflight"](args, settings, reporter)
    return Result(found.as_json(), [f"{c['status']:>12}  {c['check']}: {c['detail']}" for c in found.checks])


def _cmd_plan(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> Result:
    options = PlanOptions(
        runner=args.runner,
        dry_run=args.dry_run,
        no_publish=args.no_publish,
        extra_dist=args.extra_dist,
        prebuilt=args.prebuilt,
    )
    decided = commands.plan(repo=args.repo, selection=selection_of(args), options=options, reporter=reporter)
    data = fanout.plan_document(decided, args.repo, args.pull_request_base)
    return Result(data, plan_lines(decided, data["matrix"]))


def plan_lines(plan: ReleasePlan, matrix: Sequence[Mapping[str, Any]] = ()) -> list[str]:
    """The plan for people: the source, each node in order with what it waits for, the wheel matrix."""
    source = plan.source
    versions = ", ".join(f"{d} {v}" for d, v in source.versions.items())
    lines = [
        f"{source.mode} of {source.unit} ({source.tag or 'no tag'}) at {source.commit}: {versions}",
        f"runner: {plan.runner}; dry-run: {'yes' if plan.dry_run else 'no'}; folder: .release/{plan.folder}",
    ]
    if source.siblings:
        lines.append(f"siblings (built from the same commit): {', '.join(source.siblings)}")
    for wave, nodes in enumerate(plan.waves(), start=1):
        for node in nodes:
            after = f"  (after {', '.join(node.needs)})" if node.needs else ""
            lines.append(f"{wave:>3}. {node.id}: cuda-ci {' '.join(node.argv)}{after}")
    for entry in matrix:
        lines.append(f"wheel job {entry['group']} on {entry['runner']}: {' '.join(entry['identifiers'])}")
    return lines


def _cmd_check_wheels(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> Result:
    data = commands.check_wheels(
        plan_file=args.plan, wheels=args.wheels, group=args.group, reports=args.reports, repo=args.repo
    )
    if args.group:
        files = data["report"]["files"]
        return Result(data, [f"{sha256}  {name}" for name, sha256 in files.items()])
    return Result(data, [f"checked: {name}" for name in data["wheels"]])


def _cmd_validate(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> Result:
    manifest = NODE_COMMANDS["validate"](args, settings, reporter)
    checks_done = manifest.get("validation", [])
    data = {**folder_facts(args.release_dir.resolve()), "checks": checks_done}
    return Result(data, _check_lines(checks_done))


def _cmd_smoke(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> Result:
    checks_done = NODE_COMMANDS["smoke"](args, settings, reporter)
    return Result({"release_dir": str(args.release_dir.resolve()), "checks": checks_done}, _check_lines(checks_done))


def _cmd_docs(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> Result:
    paths = NODE_COMMANDS["docs"](args, settings, reporter)
    data = {"release_dir": str(args.release_dir.resolve()), "docs": [str(p) for p in paths]}
    return Result(data, [f"docs: {path}" for path in paths])


def _cmd_record_docs(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> Result:
    result = NODE_COMMANDS["record-docs"](args, settings, reporter)
    data = {"release_dir": str(args.release_dir.resolve()), "docs": dict(result)}
    return Result(data, [f"docs: {result['status']} ({result['detail']})"])


def _published(folder: Path, first_entry: int, settings: Settings, dry_run: bool) -> list[dict[str, object]]:
    """What this run's publish did per target (the log's entries from ``first_entry`` on), with links."""
    entries = PublishLog(folder / "publish-log.json").entries[first_entry:]
    return publish_targets(entries, folder, settings, dry_run)


def _cmd_publish(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> Result:
    folder = args.release_dir.resolve()
    first_entry = len(PublishLog(folder / "publish-log.json").entries)
    outcomes = NODE_COMMANDS["publish"](args, settings, reporter)
    lines = [f"{target:>10}: {outcome}" for target, outcome in outcomes.items()]
    dry_run = ", dry-run" if args.dry_run else ""
    lines.append(f"published ({args.target}{dry_run}): see {args.release_dir / 'publish-log.json'}")
    targets = _published(folder, first_entry, settings, args.dry_run)
    return Result({**folder_facts(folder), "dry_run": args.dry_run, "targets": targets}, lines)


def _cmd_release(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> Result:
    folder = hostrun.release(
        repo=args.repo,
        selection=selection_of(args),
        dry_run=args.dry_run,
        no_publish=args.no_publish,
        extra_dist=args.extra_dist,
        out=args.out,
        settings=settings,
        reporter=reporter,
        prebuilt=(args.prebuilt, args.wheel_reports),
    )
    dry_run = args.dry_run or args.snapshot
    targets = [] if args.no_publish else _published(folder, 0, settings, dry_run)
    data = {**folder_facts(folder), "dry_run": dry_run, "targets": targets}
    lines = [f"{stage:>10}: {seconds:6.1f} s" for stage, seconds in reporter.stage_seconds().items()]
    return Result(data, [*lines, f"release folder: {folder}"], ReleaseFolder(folder).load()["files"])


def _cmd_verify(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> Result:
    if args.tag is not None and not args.from_github:
        raise UsageError("--tag needs --from-github (or give --release-dir)")
    report = commands.verify(release_dir=args.release_dir, tag=args.tag, settings=settings, reporter=reporter)
    lines = [f"    ok  {line}" for line in report.passed] + [f"  FAIL  {line}" for line in report.problems]
    source = {"tag": args.tag} if args.tag else {"release_dir": str(args.release_dir.resolve())}
    data = {**source, "passed": report.passed, "problems": report.problems}
    if report.problems:
        return Result(data, lines, problems=(*report.problems, f"verify: {len(report.problems)} mismatch(es)"))
    return Result(data, [*lines, f"verified: {len(report.passed)} checks passed"])


def _cmd_verify_reproducible(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> Result:
    compared = commands.verify_reproducible(repo=args.repo, release_dir=args.release_dir, reporter=reporter)
    found = [{"name": r.name, "status": r.status, "detail": r.detail} for r in compared]
    different = tuple(f"{r.name} is not reproducible: {r.detail}" for r in compared if r.status == "different")
    return Result(
        {"release_dir": str(args.release_dir.resolve()), "results": found},
        [f"{r.status:>12}  {r.name}: {r.detail}" for r in compared],
        problems=different,
    )


def _cmd_sign(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> Result:
    paths = commands.sign(release_dir=args.release_dir, settings=settings, reporter=reporter)
    data = {"release_dir": str(args.release_dir.resolve()), "attestations": [str(p) for p in paths]}
    return Result(data, [f"attestation: {path}" for path in paths])


def _cmd_report(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> Result:
    """A run's folder reported here as ``cuda-ci release`` reports its own (on Actions: the annotations,
    job summary and step outputs a Dagger run's containers cannot write); failed when the run failed."""
    folder, outcome = commands.report(release_dir=args.release_dir)
    nodes = [
        {"node": n["node"], "status": str(n["status"]), "seconds": round(sum(dict(n["stages"]).values()), 3)}
        for n in outcome["nodes"]
    ]
    lines = [f"{n['status']:>10}  {n['node']} ({n['seconds']:.1f} s)" for n in nodes]
    published = (folder / "publish-log.json").is_file()
    targets = _published(folder, 0, settings, args.dry_run) if published else []
    data = {"release_dir": str(folder), "dry_run": args.dry_run, "targets": targets, "nodes": nodes}
    data["stages"] = outcome["stages"]  # the run's, not this command's
    if outcome["status"] != "succeeded":
        problems = tuple(outcome["errors"]) or (f"{folder}: a node failed without saying why (see its log)",)
        return Result(data, lines, problems=problems)
    if not ReleaseFolder(folder).manifest_path.is_file():  # a wheel job's (wheels --keep-failed): no release yet
        return Result(data, lines)
    files = ReleaseFolder(folder).load()["files"]
    return Result({**folder_facts(folder), **data}, [*lines, f"release folder: {folder}"], files)


def _cmd_status(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> Result:
    """Exit 0 only when every place of every release is complete; never writes anywhere."""
    request = release_status.StatusRequest(
        repo=args.repo, tag=args.tag, component=args.component, release_dir=args.release_dir
    )
    statuses = commands.status(request=request, settings=settings, reporter=reporter)
    lines = [line for status in statuses for line in release_status.status_lines(status)]
    unfinished = [s.tag.name for s in statuses if not s.complete]
    problems = (f"not finished: {', '.join(unfinished)}: run the commands under next:, in order",) if unfinished else ()
    return Result(release_status.report_json(statuses), lines, problems=problems)


def _jobs(results: Sequence[checks.JobResult]) -> Result:
    lines = [f"{'passed' if r.ok else 'FAILED':>8}  {r.name}: {(r.detail.splitlines() or [''])[0]}" for r in results]
    jobs = [
        {"name": r.name, "ok": r.ok, "detail": r.detail, **({"file": r.location.file} if r.location else {})}
        for r in results
    ]
    failed = tuple(Problem(f"{r.name} failed:\n{r.detail}", r.location) for r in results if not r.ok)
    return Result({"jobs": jobs}, lines, problems=failed)


def _cmd_lint(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> Result:
    return _jobs(commands.lint(repo=args.repo, reporter=reporter))


def _cmd_test(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> Result:
    if args.out is not None:
        ReleaseFolder.fresh(args.out)  # the tested folder is copied there: nothing of the user's is overwritten
    job = commands.ci_test(
        repo=args.repo, component=args.component, out=args.out, groups=args.group, settings=settings, reporter=reporter
    )
    return _jobs([job])


def _cmd_ci(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> Result:
    return _jobs(commands.ci(repo=args.repo, component=args.component, settings=settings, reporter=reporter))


HANDLERS: dict[str, Handler] = {
    "component-version": _cmd_component_version,
    "plan": _cmd_plan,
    "check-wheels": _cmd_check_wheels,
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
    "report": _cmd_report,
    "status": _cmd_status,
    "lint": _cmd_lint,
    "test": _cmd_test,
    "ci": _cmd_ci,
}


class Terminated(BaseException):
    """SIGTERM: unwind like an interrupt, so that every child, server and temporary folder goes."""


def _on_sigterm(signum: int, frame: object) -> None:
    process.stop_children()
    raise Terminated


@contextmanager
def _live_terminal(reporter: Reporter, settings: Settings) -> Iterator[None]:
    """Live progress while the command runs, on a terminal outside GitHub Actions only."""
    if settings.in_github_actions or not reporter.stream.isatty():
        yield
        return
    from cuda_ci.cli.liveview import Terminal

    reporter.terminal = Terminal(reporter.stream, color=not settings.no_color)
    try:
        yield
    finally:
        reporter.terminal = None


def _run(command: str, args: argparse.Namespace, settings: Settings, reporter: Reporter) -> Result:
    """The command's result; a failure of it (or a bug in it) as the :class:`CudaCiError` reported."""
    try:
        with runs.run_folder(reporter), toolenvs.cache_namespace(cache_trust(args)), _live_terminal(reporter, settings):
            if args.node:  # a node of a release plan (the Dagger module runs each in its own container)
                return run_parsed_node(args.node, args, settings, reporter, HANDLERS[command])  # type: ignore[no-any-return]
            return HANDLERS[command](args, settings, reporter)
    except CudaCiError as error:
        if args.debug:
            sys.stderr.write(secrets.redact(traceback.format_exc()))
        return Result(problems=error.problems, exit_code=error.exit_code)
    except Exception as error:  # a bug: say so plainly, without secrets
        if args.debug:
            sys.stderr.write(secrets.redact(traceback.format_exc()))
        translated = commands.translate(error)
        if translated is not None:
            return Result(problems=translated.problems[:1])
        return Result(problems=(f"internal error: {type(error).__name__}: {error} (run with --debug)",))


def _report(command: str, args: argparse.Namespace, settings: Settings, reporter: Reporter, result: Result) -> int:
    """stdout, stderr and, on GitHub Actions, the annotations, the job summary and the step outputs."""
    doc = document(command, result.data, result.problems, reporter.stage_seconds())
    clireport.print_result(result, doc, as_json=args.json, color=not settings.no_color)
    clireport.print_problems(result.problems, github_actions=settings.in_github_actions, title=f"cuda-ci {command}")
    clireport.to_runner(command, doc, settings)
    return result.exit_status


def _environment(own_process: bool) -> dict[str, str]:
    """This run's environment: as a process of its own (the console script), cuda-ci first runs
    itself again without the credentials in its environment block (:mod:`cuda_ci.infra.credentials`)."""
    if own_process:
        credentials.reexec_without_secrets()
    return {**os.environ, **credentials.received_secrets()}


def _on_sigint(signum: int, frame: object) -> None:
    """Children run in their own process groups, so a terminal's Ctrl-C reaches cuda-ci alone: it
    ends their groups before unwinding (a thread's child would otherwise keep the run waiting)."""
    process.stop_children()
    raise KeyboardInterrupt


def _install_handlers() -> dict[signal.Signals, Any]:
    """SIGTERM and SIGINT end every child's group; the handlers they replace, to put back. A SIGINT
    that is ignored (a job started in the background) stays ignored."""
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _on_sigterm)}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, _on_sigint)
    return previous


def main(argv: Sequence[str] | None = None) -> int:
    try:
        environ = _environment(own_process=argv is None)
    except credentials.HandoffError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    args = build_parser().parse_args(argv)
    try:
        settings = settings_of(args, environ)  # the one place settings are read from the environment
    except CudaCiError as error:  # a setting that does not parse: said as any other error
        clireport.print_problems(
            error.problems, github_actions=environ.get("GITHUB_ACTIONS") == "true", title="cuda-ci"
        )
        return error.exit_code
    reporter = Reporter(github_actions=settings.in_github_actions, verbose=args.debug)
    command = DEPRECATED_ALIASES.get(args.command, args.command)
    if command != args.command:
        reporter.warn(f"`cuda-ci {args.command}` is deprecated: use `cuda-ci {command}`")
    main_thread = threading.current_thread() is threading.main_thread()
    process.allow_children()
    previous = _install_handlers() if main_thread else {}
    try:
        with ExitStack() as stack:
            if settings.in_github_actions:  # every secret masked before anything can print it
                stack.enter_context(secrets.announced_to(clireport.print_masks))
            secrets.register_environment(environ)
            stack.enter_context(toolenvs.use_cache_dir(settings.cache_dir))
            return _report(command, args, settings, reporter, _run(command, args, settings, reporter))
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
