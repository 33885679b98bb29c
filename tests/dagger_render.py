"""Render the lazy call chains the Dagger SDK builds offline (no engine), for assertions."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


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
