"""The one registry of component facts: everything else reads it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cuda_ci.infra.errors import UsageError

WheelKind = Literal["pure", "platform"]


@dataclass(frozen=True, kw_only=True)
class Component:
    """One distribution built from one folder of the monorepo."""

    dir: str
    distribution: str
    import_names: tuple[str, ...]
    wheel: WheelKind
    depends_on: tuple[str, ...] = ()
    # Components the build backend asks for (a dynamic build requirement, as upstream cuda-core's
    # cuda-bindings for its .pxd files): installed into the build from this commit's wheels, never
    # from an index, where these names hold other builds.
    build_requires: tuple[str, ...] = ()
    # The empty metapackage has no import package of its own; check-wheel-contents'
    # "empty wheel" codes are expected for it and nothing else.
    wheel_contents_ignore: tuple[str, ...] = ()
    # Run in the smoke-install environment after the imports; must pass with or without a GPU.
    smoke: str = ""

    @property
    def notes_dir(self) -> str:
        return f"{self.dir}/docs/source/release"

    def notes_path(self, version: str) -> str:
        return f"{self.notes_dir}/{version}-notes.rst"

    @property
    def docs_dir(self) -> str:
        return f"{self.dir}/docs/source"

    @property
    def project_name(self) -> str:
        """The normalized name used in file names (PEP 427/625)."""
        return self.distribution.replace("-", "_")


@dataclass(frozen=True, kw_only=True)
class ReleaseUnit:
    """What one tag releases: one or more components, uploaded in this order."""

    name: str
    tag_prefix: str
    components: tuple[Component, ...]
    # GitHub's "Latest" release: True lets this unit's newest final version take it (make_latest);
    # a unit with False never does, so its releases never displace the repository's Latest.
    latest: bool = False

    @property
    def primary(self) -> Component:
        return self.components[0]

    @property
    def distributions(self) -> tuple[str, ...]:
        return tuple(c.distribution for c in self.components)

    @property
    def has_platform_wheels(self) -> bool:
        return any(c.wheel == "platform" for c in self.components)


PATHFINDER = Component(
    dir="cuda_pathfinder",
    distribution="cuda-pathfinder",
    import_names=("cuda.pathfinder",),
    wheel="pure",
)
BINDINGS = Component(
    dir="cuda_bindings",
    distribution="cuda-bindings",
    import_names=("cuda.bindings", "cuda.bindings.driver"),
    wheel="platform",
    depends_on=("cuda-pathfinder",),
    smoke=(
        "from cuda.bindings import driver\n"
        "try:\n"
        "    print('driver', driver.cuDriverGetVersion())\n"
        "except driver.CUDADriverNotFoundError:\n"
        "    print('no driver: CUDADriverNotFoundError, as documented')\n"
    ),
)
PYTHON_META = Component(
    dir="cuda_python",
    distribution="cuda-python",
    import_names=("cuda.bindings.driver",),
    wheel="pure",
    depends_on=("cuda-bindings",),
    wheel_contents_ignore=("W007", "W008"),
    smoke=(
        "from importlib.metadata import requires, version\n"
        "assert requires('cuda-python') == [f\"cuda-bindings=={version('cuda-python')}\"], requires('cuda-python')\n"
    ),
)
CORE = Component(
    dir="cuda_core",
    distribution="cuda-core",
    import_names=("cuda.core",),
    wheel="platform",
    depends_on=("cuda-pathfinder", "cuda-bindings"),
    build_requires=("cuda-bindings",),
    smoke=(
        "from cuda.core import _variant\n"
        "print('compiled builds for CUDA', _variant.built_majors(), 'loaded', _variant.load().BUILD_MAJOR)\n"
    ),
)

COMPONENTS: tuple[Component, ...] = (PATHFINDER, BINDINGS, PYTHON_META, CORE)

UNITS: tuple[ReleaseUnit, ...] = (
    ReleaseUnit(name="cuda-pathfinder", tag_prefix="cuda-pathfinder-v", components=(PATHFINDER,)),
    ReleaseUnit(name="cuda-bindings", tag_prefix="v", components=(BINDINGS, PYTHON_META), latest=True),
    ReleaseUnit(name="cuda-core", tag_prefix="cuda-core-v", components=(CORE,)),
)


def unit_names() -> tuple[str, ...]:
    return tuple(u.name for u in UNITS)


def get_unit(name: str) -> ReleaseUnit:
    """The release unit called ``name``, or a usage error listing the valid ones."""
    for unit in UNITS:
        if unit.name == name:
            return unit
    raise UsageError(f"unknown component {name!r}: choose one of {', '.join(unit_names())}")


def get_component(distribution: str) -> Component:
    for component in COMPONENTS:
        if component.distribution == distribution:
            return component
    raise UsageError(
        f"unknown distribution {distribution!r}: known are " + ", ".join(c.distribution for c in COMPONENTS)
    )


def unit_of(component: Component) -> ReleaseUnit:
    return next(u for u in UNITS if component in u.components)


def dependency_closure(unit: ReleaseUnit) -> tuple[Component, ...]:
    """Sibling components the unit's components need at install time, dependencies first."""
    own = set(unit.distributions)
    seen: list[Component] = []

    def visit(distribution: str) -> None:
        component = get_component(distribution)
        for dep in component.depends_on:
            visit(dep)
        if component not in seen and distribution not in own:
            seen.append(component)

    for component in unit.components:
        for dep in component.depends_on:
            visit(dep)
    return tuple(seen)
