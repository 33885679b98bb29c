"""The host executor: a plan's nodes run in this process, side by side where the plan allows.

Each node is a ``cuda-ci`` command line (the very one the Dagger module runs in a container), parsed
by the CLI's own parser and run by :data:`NODE_COMMANDS`; as a node it leaves ``logs/<node>.json``
and ``run-log.json`` in the release folder (:mod:`cuda_ci.executors.runlog`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cuda_ci.cli import commands
from cuda_ci.cli.flags import build_parser, publish_phases, runner_of
from cuda_ci.executors.runlog import node_record, write_node_log
from cuda_ci.infra.errors import CudaCiError, UsageError
from cuda_ci.infra.git import Git
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.manifest import ReleaseFolder, write_json_atomic
from cuda_ci.infra.settings import Settings
from cuda_ci.plan.release import Node, PlanOptions, ReleasePlan, fill
from cuda_ci.plan.selection import Selection
from cuda_ci.publish import run as stages

NodeCommand = Callable[[argparse.Namespace, Settings, Reporter], Any]


def selection_of(args: argparse.Namespace) -> Selection:
    return Selection(
        tag=args.tag, component=args.component, snapshot=args.snapshot, rehearse=args.rehearse, ref=args.ref
    )


def _preflight(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> Any:
    found = commands.preflight(
        repo=args.repo, selection=selection_of(args), dry_run=args.dry_run, settings=settings, reporter=reporter
    )
    if args.out is not None:
        write_json_atomic(args.out, found.as_json())
    return found


def _build(args: argparse.Namespace, settings: Settings, reporter: Reporter) -> Any:
    return commands.build(
        repo=args.repo,
        selection=selection_of(args),
        wheels_only=args.wheels_only,
        out=args.out,
        settings=settings,
        reporter=reporter,
    )


# What each command does as a node; the CLI's handlers call the same and print the result.
NODE_COMMANDS: dict[str, NodeCommand] = {
    "preflight": _preflight,
    "build": _build,
    "validate": lambda a, s, r: commands.validate(
        repo=a.repo, release_dir=a.release_dir, extra_dist=a.extra_dist, reporter=r
    ),
    "smoke": lambda a, s, r: commands.smoke(repo=a.repo, release_dir=a.release_dir, settings=s, reporter=r),
    "docs": lambda a, s, r: commands.docs(
        repo=a.repo, release_dir=a.release_dir, reporter=r, beside_validate=a.beside_validate
    ),
    "record-docs": lambda a, s, r: commands.record_docs(release_dir=a.release_dir, reporter=r),
    "publish": lambda a, s, r: commands.publish(
        repo=a.repo,
        release_dir=a.release_dir,
        target=a.target,
        dry_run=a.dry_run,
        settings=s,
        reporter=r,
        phases=publish_phases(a),
    ),
}


def node_folder(args: argparse.Namespace) -> Path | None:
    """The release folder a node writes its log into (preflight has none: build records its log)."""
    folder = getattr(args, "release_dir", None) or (getattr(args, "out", None) if args.command == "build" else None)
    return Path(folder) if folder is not None else None


def run_node(node_id: str, argv: Sequence[str], settings: Settings, reporter: Reporter) -> Any:
    """One node's command line, in this process, with this run's settings and the line's hand-off flags."""
    args = build_parser().parse_args(list(argv))
    settings = dataclasses.replace(settings, runner=runner_of(args))
    return run_parsed_node(node_id, args, settings, reporter, NODE_COMMANDS[args.command])


def run_parsed_node(
    node_id: str, args: argparse.Namespace, settings: Settings, reporter: Reporter, command: NodeCommand
) -> Any:
    """Run ``command`` as node ``node_id``: its log and ``run-log.json`` are written however it ends,
    except after a usage error (refused before it ran: an earlier run's record is kept)."""
    status, errors, folder = "failed", list[str](), node_folder(args)
    try:
        result = command(args, settings, reporter)
        status = "succeeded"
        return result
    except UsageError:
        folder = None
        raise
    except CudaCiError as error:
        errors = list(error.problems)
        raise
    except Exception as error:
        errors = [f"internal error: {type(error).__name__}: {error}"]
        raise
    finally:
        record = node_record(node_id, reporter, status, errors)
        if args.command == "preflight" and status == "succeeded" and args.out is not None:
            found = json.loads(Path(args.out).read_text(encoding="utf-8"))
            write_json_atomic(args.out, {**found, "log": record})
        elif folder is not None:
            write_node_log(folder, record)


def execute_plan(
    plan: ReleasePlan,
    paths: Mapping[str, str],
    settings: Settings,
    reporter: Reporter,
    runner: Callable[[str, Sequence[str], Settings, Reporter], Any] = run_node,
) -> None:
    """Every node in the plan's order; the nodes of one wave side by side, each with its own reporter.

    A failing wave lets its other nodes finish, then raises every problem at once.
    """
    for wave in plan.waves():
        first, *beside = [_task(node, paths, settings, runner) for node in wave]
        own = reporter.child()
        try:
            if beside:
                with reporter.alongside(*beside):
                    first(own)
            else:
                first(own)
        finally:
            reporter.adopt(own)


def _task(
    node: Node, paths: Mapping[str, str], settings: Settings, runner: Callable[..., Any]
) -> Callable[[Reporter], Any]:
    return lambda child: runner(node.id, fill(node.argv, paths), settings, child)


def release(
    *,
    repo: Path,
    selection: Selection,
    dry_run: bool,
    no_publish: bool,
    extra_dist: Path | None,
    out: Path | None,
    settings: Settings,
    reporter: Reporter,
    prebuilt: tuple[Path | None, Path | None] = (None, None),
) -> Path:
    """``cuda-ci release``: the plan, then its nodes here: preflight → build (once) → validate beside
    docs → record-docs → publish, one release of a tag at a time on this machine. ``prebuilt``: the
    Linux wheels of a fanned-out workflow's wheel jobs and their reports (build takes them, checked)."""
    if out is not None:  # refused before anything runs; the default folder is known from the plan
        ReleaseFolder.fresh(out.resolve())
    wheels, reports = prebuilt
    if (wheels is None) != (reports is None):
        raise UsageError("--prebuilt and --wheel-reports go together: the wheels and the sha256 their jobs reported")
    options = PlanOptions(
        runner="host",
        dry_run=dry_run,
        no_publish=no_publish,
        extra_dist=extra_dist is not None,
        prebuilt=wheels is not None,
    )
    try:
        decided = commands.plan(repo=repo, selection=selection, options=options, reporter=reporter)
    except UsageError:
        raise
    except CudaCiError:  # no plan without a commit (a missing tag): preflight tells every finding at once
        commands.preflight(repo=repo, selection=selection, dry_run=dry_run, settings=settings, reporter=reporter)
        raise
    git = Git.open(repo)
    folder = ReleaseFolder.fresh((out or git.root / ".release" / decided.folder).resolve())
    source = decided.source
    lock_name = source.tag if source.mode != "snapshot" else f"snapshot-{source.unit}"
    with stages.release_lock(git, str(lock_name)), tempfile.TemporaryDirectory(prefix="cuda-ci-plan-") as tmp:
        paths = {"repo": str(git.root), "release": str(folder.path), "preflight": str(Path(tmp) / "preflight.json")}
        if extra_dist is not None:
            paths["extra"] = str(extra_dist.resolve())
        if wheels is not None and reports is not None:
            paths.update(prebuilt=str(wheels.resolve()), reports=str(reports.resolve()))
        execute_plan(decided, paths, settings, reporter)
    return folder.path
