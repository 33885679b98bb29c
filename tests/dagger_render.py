"""Render the lazy call chains the Dagger SDK builds offline (no engine), for assertions; and the
release plans those chains are made from, decided offline."""

from __future__ import annotations

import enum
import functools
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


def offline_plan(
    unit_name: str,
    tag: str | None,
    mode: Mode = "release",
    *,
    dry_run: bool = False,
    no_publish: bool = False,
    extra_dist: bool = False,
    ref: str | None = None,
) -> ReleasePlan:
    """The Dagger runner's release plan for this checkout's components, at a fake commit."""
    unit = get_unit(unit_name)
    version = tag.removeprefix(unit.tag_prefix) if tag else "0.1.dev1+g0000000"
    state = RepositoryState(
        commit=FAKE_COMMIT,
        versions={c.distribution: version for c in unit.components},
        wheel_jobs=wheel_jobs(unit_name),
    )
    options = PlanOptions(runner="dagger", dry_run=dry_run, no_publish=no_publish, extra_dist=extra_dist)
    return plan_release(unit, tag, mode, ref, options, state)
