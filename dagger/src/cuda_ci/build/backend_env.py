"""The kept build environment of a component: what its build backend needs, static and dynamic.

As PyPA ``build`` does, the environment holds ``[build-system] requires`` and then whatever the
backend asks for through ``get_requires_for_build_sdist``/``_wheel`` (called with PyPA's
``pyproject_hooks`` inside the environment of the static requirements). Where the dynamic
requirements cannot be read or do not resolve, the build is isolated instead, with a warning.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pyproject_hooks import BuildBackendHookCaller

from cuda_ci.infra.declared import is_component
from cuda_ci.infra.envs import Env
from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.process import clean_environ, run
from cuda_ci.infra.toolenvs import tool_env, tool_environ

LEGACY_BACKEND = "setuptools.build_meta:__legacy__"  # PEP 517's fallback without [build-system]


def _build_system(package_dir: Path) -> dict[str, Any]:
    with (package_dir / "pyproject.toml").open("rb") as handle:
        build_system: dict[str, Any] = tomllib.load(handle).get("build-system", {})
    return build_system


def build_requirements(package_dir: Path) -> list[str]:
    """``[build-system] requires`` (PEP 518's default where absent), plus this run's ``build`` frontend."""
    requires = _build_system(package_dir).get("requires", ["setuptools>=40.8.0"])
    return [*requires, f"build=={metadata.version('build')}"]


def dynamic_requirements(package_dir: Path, kept: Env, reporter: Reporter) -> list[str]:
    """What the backend asks for beyond its static requirements, for an sdist and for a wheel."""
    build_system = _build_system(package_dir)

    def runner(cmd: Sequence[str], cwd: str | None = None, extra_environ: Mapping[str, str] | None = None) -> None:
        environ = tool_environ(clean_environ(**dict(extra_environ or {})))
        what = f"the build backend's dynamic requirements of {package_dir.name}"
        run(cmd, what=what, reporter=reporter, cwd=Path(cwd) if cwd else None, env=environ)

    hooks = BuildBackendHookCaller(
        str(package_dir),
        build_system.get("build-backend", LEGACY_BACKEND),
        build_system.get("backend-path"),
        runner=runner,
        python_executable=str(kept.python),
    )
    found: dict[str, None] = {}
    try:
        for requirement in [*hooks.get_requires_for_build_sdist(), *hooks.get_requires_for_build_wheel()]:
            found[requirement] = None
    except CudaCiError:
        raise
    except Exception as error:  # pyproject_hooks' BackendUnavailable and the like
        detail = (str(error).strip().splitlines() or [""])[-1]
        raise CudaCiError(f"{type(error).__name__}: {detail}") from None
    return list(found)


def component_requirements(package_dir: Path, dynamic: Sequence[str], allowed: Sequence[str]) -> list[str]:
    """The dynamic requirements naming this repository's components: each must be one the registry
    lists in ``build_requires`` (those come from this commit's wheels, never from an index)."""
    named = [r for r in dynamic if is_component(r)]
    unexpected = [
        r for r in named if canonicalize_name(Requirement(r).name) not in {canonicalize_name(a) for a in allowed}
    ]
    if unexpected:
        raise CudaCiError(
            f"{package_dir.name}'s build backend asks for {', '.join(unexpected)}, a component of this "
            f"repository that components.py does not list in its build_requires: add it there, so that "
            "builds take it from this commit's wheels and never from an index"
        )
    return named


def build_tool_env(
    package_dir: Path, python: str, reporter: Reporter, build_requires: Sequence[str] = ()
) -> Env | None:
    """The kept build environment for ``package_dir``, dynamic requirements included; None: build isolated.

    Requirements naming a component (``build_requires``) are left out: the build adds this commit's
    wheels of them (see :func:`cuda_ci.build.frontend.overlay_env`).
    """
    static = build_requirements(package_dir)
    kept = tool_env(static, python=python, purpose="build", reporter=reporter)
    if kept is None:
        return None
    try:
        found = [r for r in dynamic_requirements(package_dir, kept, reporter) if r not in static]
    except CudaCiError as error:
        reporter.warn(
            f"{package_dir.name}: the build backend's dynamic requirements could not be read "
            f"({error.problems[0].splitlines()[0]}): building it isolated instead"
        )
        return None
    components = component_requirements(package_dir, found, build_requires)
    dynamic = [r for r in found if r not in components]
    if not dynamic:
        return kept
    full = tool_env([*static, *dynamic], python=python, purpose="build", reporter=reporter)
    if full is None:
        reporter.warn(
            f"{package_dir.name}: its build backend's dynamic requirements ({', '.join(dynamic)}) "
            "did not resolve into a kept environment: building it isolated instead"
        )
    return full
