"""What an install of this run's files needs from an index: the third-party requirements only.

The component's own files and its siblings come from this run (never from an index: those names
hold other builds there). Their third-party requirements (extras and markers evaluated for the
target interpreter) come from the configured index, installed first; then this run's files are
installed with ``--no-index``, their third-party requirements already met. A requirement naming a
component that this run does not provide, or a third-party requirement that pulls one in, is refused.
"""

from __future__ import annotations

import functools
import json
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import default_environment
from packaging.metadata import Metadata
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name, parse_wheel_filename

from cuda_ci.infra.declared import COMPONENT_NAMES
from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.process import PYTHON, probe_interpreter

_MARKER_ENVIRONMENT = (
    "import json, os, platform, sys\n"
    "v = sys.implementation.version\n"
    "print(json.dumps({'implementation_name': sys.implementation.name,"
    " 'implementation_version': f'{v.major}.{v.minor}.{v.micro}', 'os_name': os.name,"
    " 'platform_machine': platform.machine(), 'platform_release': platform.release(),"
    " 'platform_system': platform.system(), 'platform_version': platform.version(),"
    " 'python_full_version': platform.python_version(),"
    " 'platform_python_implementation': platform.python_implementation(),"
    " 'python_version': '.'.join(platform.python_version_tuple()[:2]), 'sys_platform': sys.platform}))"
)


@functools.cache
def marker_environment(python: str) -> dict[str, str]:
    """PEP 508 marker values of ``python`` (this interpreter's without a subprocess)."""
    if python == PYTHON:
        return {key: str(value) for key, value in default_environment().items()}
    environment: dict[str, str] = json.loads(probe_interpreter(python, _MARKER_ENVIRONMENT))
    return environment


def requires_dist(wheel: Path) -> list[Requirement]:
    """``Requires-Dist`` of a wheel's METADATA."""
    name, version, _, _ = parse_wheel_filename(wheel.name)
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(f"{name.replace('-', '_')}-{version}.dist-info/METADATA")
    return list(Metadata.from_email(text, validate=False).requires_dist or [])


@dataclass(frozen=True)
class RuntimePlan:
    """Third-party requirements (from the index) and the local ones (this run's files) to ask for."""

    third_party: tuple[str, ...]
    local: tuple[str, ...]


def _applies(requirement: Requirement, extras: Iterable[str], environment: dict[str, str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({**environment, "extra": e}) for e in ("", *extras))


def _unmarked(requirement: Requirement) -> str:
    plain = Requirement(str(requirement))
    plain.marker = None
    return str(plain)


def plan_runtime(
    roots: Sequence[str],
    wheels: Sequence[Path],
    *,
    python: str = PYTHON,
    what: str = "the install",
    refuse_missing: bool = True,
) -> RuntimePlan:
    """Walk ``roots`` (this run's distributions, with extras, and group requirements) through the
    local ``wheels``' metadata; every requirement a local wheel does not provide is third-party.

    A component no local wheel provides is refused (``refuse_missing``), or left to the caller's
    own source (publish's install-back takes the siblings from the index it publishes to)."""
    local: dict[NormalizedName, Path] = {}
    for wheel in wheels:
        local.setdefault(parse_wheel_filename(wheel.name)[0], wheel)
    environment = marker_environment(python)
    third: dict[str, None] = {}
    local_roots: list[str] = []
    problems: list[str] = []
    seen: set[tuple[NormalizedName, frozenset[str]]] = set()
    queue = [(r, "") for r in map(Requirement, roots) if _applies(r, (), environment)]
    while queue:
        requirement, needed_by = queue.pop(0)
        name = canonicalize_name(requirement.name)
        if name not in COMPONENT_NAMES:
            third[_unmarked(requirement)] = None
        elif name in local:
            local_roots += [] if needed_by else [_unmarked(requirement)]
            if (name, frozenset(requirement.extras)) not in seen:
                seen.add((name, frozenset(requirement.extras)))
                by = f"{name}[{','.join(sorted(requirement.extras))}]" if requirement.extras else name
                queue += [(d, by) for d in requires_dist(local[name]) if _applies(d, requirement.extras, environment)]
        elif refuse_missing:
            problems.append(_missing(requirement, needed_by, what))
    if problems:
        raise CudaCiError(*problems)
    return RuntimePlan(third_party=tuple(third), local=tuple(local_roots))


def _missing(requirement: Requirement, needed_by: str, what: str) -> str:
    by = f" (required by {needed_by})" if needed_by else ""
    return (
        f"{what}: {_unmarked(requirement)}{by} names a component of this repository that this run does not "
        "provide, and an index holds other builds of that name: declare it a dependency of the "
        "component (it is then built from the same commit) or remove the requirement"
    )


def refuse_components(installed: Iterable[str], third_party: Sequence[str], what: str) -> None:
    """After the third-party install: none of it may have pulled a component from the index."""
    pulled = sorted({canonicalize_name(n) for n in installed} & COMPONENT_NAMES)
    if pulled:
        raise CudaCiError(
            f"{what}: the third-party requirements ({', '.join(third_party)}) pulled {', '.join(pulled)} "
            "from the index, where those names hold other builds: only this run may provide them; drop "
            "the requirement that needs them or make it a dependency of a component"
        )
