"""The host CLI ``cuda-ci``: parses flags, renders progress, maps errors to exit codes."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from cuda_ci import components, secrets
from cuda_ci.errors import CudaCiError, UsageError
from cuda_ci.log import Reporter
from cuda_ci.manifest import FileEntry

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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cuda-ci", description="Build, validate and release the CUDA Python monorepo.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("version", help="print the version a component builds as at HEAD")
    p.add_argument("--component", required=True, choices=[c.distribution for c in components.COMPONENTS])
    _common(p)

    p = sub.add_parser("build", help="build a release unit's sdists and wheels once, from a tag or HEAD")
    _release_selection(p)
    p.add_argument("--wheels-only", action="store_true", help="only this platform's wheels (no sdist, no pure wheels)")
    p.add_argument("--out", type=Path, help="the release folder (default: .release/<tag>/)")
    _common(p)
    return parser


def _selection(args: argparse.Namespace) -> None:
    if args.snapshot and args.tag is not None:
        raise UsageError("--snapshot and --tag exclude each other: a snapshot builds HEAD without a tag")
    if args.snapshot and not args.component:
        raise UsageError("--snapshot needs --component (one of " + ", ".join(components.unit_names()) + ")")
    if not args.snapshot and args.tag is None:
        raise UsageError("give --tag TAG, or --snapshot --component C")


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
    from cuda_ci.stages import build_only

    _selection(args)
    manifest, folder = build_only(
        repo=args.repo,
        tag=args.tag,
        component=args.component,
        wheels_only=args.wheels_only,
        out=args.out,
        reporter=reporter,
    )
    print_summary(manifest["files"])
    print(f"release folder: {folder}")
    return 0


HANDLERS: dict[str, Handler] = {"version": _cmd_version, "build": _cmd_build}


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    secrets.register_environment()
    reporter = Reporter(github_actions=os.environ.get("GITHUB_ACTIONS") == "true", verbose=args.debug)
    try:
        return HANDLERS[args.command](args, reporter)
    except CudaCiError as error:
        if args.debug:
            traceback.print_exc()
        for problem in error.problems:
            lines = secrets.redact(problem).splitlines() or [""]
            sys.stderr.write(f"error: {lines[0]}\n" + "".join(f"  {line}\n" for line in lines[1:]))
        return error.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
