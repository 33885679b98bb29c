"""Render the lazy call chains the Dagger SDK builds offline (no engine), for assertions; and the
release plans those chains are made from, decided offline."""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cuda_ci.infra.components import get_unit
from cuda_ci.plan.release import Mode, PlanOptions, ReleasePlan, RepositoryState, WheelJob, plan_release
from tests.helpers import REPO_ROOT


@dataclass(frozen=True)
class Call:
    type_name: str
    name: str
    args: dict[str, Any]


def render(obj: Any) -> list[Call]:
    """The chain of calls behind a Dagger object, its object arguments rendered as chains too."""
    return [Call(f.type_name, f.name, {k: _arg(v) for k, v in f.args.items()}) for f in obj._ctx.selections]


def _arg(value: Any) -> Any:
    if hasattr(value, "_ctx"):
        return render(value)
    if isinstance(value, list):
        return [_arg(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def walk(chain: list[Call]) -> Iterator[Call]:
    """Every call, depth first, nested chains included."""
    for call in chain:
        yield call
        for value in call.args.values():
            yield from _walk_value(value)


def _walk_value(value: Any) -> Iterator[Call]:
    if isinstance(value, list) and value and isinstance(value[0], Call):
        yield from walk(value)
    elif isinstance(value, list):
        for item in value:
            yield from _walk_value(item)


def contains_chain(outer: list[Call], inner: list[Call]) -> bool:
    """Whether ``inner`` appears, whole, as an argument somewhere inside ``outer``."""
    for call in walk(outer):
        for value in call.args.values():
            if value == inner:
                return True
    return False


def execs(chain: list[Call]) -> list[list[str]]:
    return [c.args["args"] for c in walk(chain) if c.name == "withExec"]


def derives_from(outer: list[Call], inner: list[Call]) -> bool:
    """Whether an argument somewhere inside ``outer`` is ``inner`` or a chain built on it (a folder
    with more files laid over it, say): what a consumer reads holds what ``inner`` made."""
    for call in walk(outer):
        for value in call.args.values():
            if isinstance(value, list) and value[: len(inner)] == inner:
                return True
    return False


def chains(chain: list[Call]) -> Iterator[list[Call]]:
    """``chain`` and every chain inside it, depth first."""
    yield chain
    for call in chain:
        for value in call.args.values():
            yield from _chains_in(value)


def _chains_in(value: Any) -> Iterator[list[Call]]:
    if isinstance(value, list) and value and isinstance(value[0], Call):
        yield from chains(value)
    elif isinstance(value, list):
        for item in value:
            yield from _chains_in(item)


def own_exec(chain: list[Call]) -> list[str]:
    """The last command a container chain runs itself (not one inside a chain it reads)."""
    return [c.args["args"] for c in chain if c.name == "withExec"][-1]


# --- release plans made offline (what `cuda-ci plan --runner=dagger --json` would print) ----------
FAKE_COMMIT = "0" * 40


@functools.cache
def wheel_jobs(unit_name: str) -> tuple[WheelJob, ...]:
    """cibuildwheel's Linux jobs for the unit's platform component, as the plan takes them."""
    from cuda_ci.build.wheel_jobs import linux_wheel_jobs

    platform = [c for c in get_unit(unit_name).components if c.wheel == "platform"]
    if not platform:
        return ()
    return tuple(
        WheelJob(identifier=job.identifier, platform=job.platform, image=job.image, python=str(job.python))
        for job in linux_wheel_jobs(REPO_ROOT / platform[0].dir)
    )


@functools.cache
def windows_identifiers(unit_name: str) -> tuple[str, ...]:
    """cibuildwheel's Windows selection for the unit's platform component (the Windows wheel jobs)."""
    from cuda_ci.build.wheel_jobs import selected_identifiers

    platform = [c for c in get_unit(unit_name).components if c.wheel == "platform"]
    return tuple(selected_identifiers(REPO_ROOT / platform[0].dir, "windows")) if platform else ()


def offline_plan(
    unit_name: str,
    tag: str | None,
    mode: Mode = "release",
    *,
    dry_run: bool = False,
    no_publish: bool = False,
    extra_dist: bool = False,
    ref: str | None = None,
    prebuilt: bool = False,
    commit: str = FAKE_COMMIT,
) -> ReleasePlan:
    """The Dagger runner's release plan for this checkout's components, at a fake commit."""
    unit = get_unit(unit_name)
    version = tag.removeprefix(unit.tag_prefix) if tag else "0.1.dev1+g0000000"
    state = RepositoryState(
        commit=commit,
        versions={c.distribution: version for c in unit.components},
        wheel_jobs=wheel_jobs(unit_name),
        windows_identifiers=windows_identifiers(unit_name),
    )
    options = PlanOptions(
        runner="dagger", dry_run=dry_run, no_publish=no_publish, extra_dist=extra_dist, prebuilt=prebuilt
    )
    return plan_release(unit, tag, mode, ref, options, state)


def printing_plans(monkeypatch: Any, tags: dict[str, str]) -> list[list[str]]:
    """Full history, and a `cuda-ci plan --json` that prints the offline plan of the flags it got (each
    unit's tag in ``tags``); the argv of every plan asked for."""
    import dagger
    from cuda_ci.cli.app import build_parser

    asked: list[list[str]] = []

    async def exists(self: dagger.Directory, path: str, **_: object) -> bool:
        return path == ".git"  # not .git/shallow

    async def stdout(self: dagger.Container) -> str:
        argv = own_exec(render(self))
        asked.append(argv)
        args = build_parser().parse_args(argv[1:])
        mode: Mode = "snapshot" if args.snapshot else "rehearsal" if args.rehearse else "release"
        unit = args.component or next(u for u, tag in tags.items() if tag == args.tag)
        plan = offline_plan(unit, args.tag, mode, dry_run=args.dry_run, no_publish=args.no_publish, ref=args.ref,
                            extra_dist=args.extra_dist, prebuilt=args.prebuilt)  # fmt: skip
        return json.dumps(plan.as_json())

    monkeypatch.setattr(dagger.Directory, "exists", exists)
    monkeypatch.setattr(dagger.Container, "stdout", stdout)
    return asked
