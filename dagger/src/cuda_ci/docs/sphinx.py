"""Docs: Sphinx (-W) builds each component's docs from this run's sdist, with its wheel installed."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

from cuda_ci.build.identifiers import installable_here
from cuda_ci.build.sdists import extract_sdist
from cuda_ci.build.siblings import folder_siblings
from cuda_ci.infra.components import Component, ReleaseUnit, get_unit
from cuda_ci.infra.declared import (
    DOCS_GROUP,
    Declared,
    declared_in_sdist,
    docs_requirements,
    install_extras,
    is_component,
    sphinx_version_variable,
)
from cuda_ci.infra.envs import Env, install_from_run
from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.manifest import ReleaseFolder
from cuda_ci.infra.process import PYTHON, clean_environ, run
from cuda_ci.infra.toolenvs import tool_env, tool_environ


def sphinx_env(requirements: Sequence[str], reporter: Reporter) -> Env | None:
    """The kept Sphinx environment holding what the ``docs`` groups resolve to (a release prepares
    it while it builds)."""
    return tool_env(requirements, python=PYTHON, purpose="sphinx", reporter=reporter)


def release_declarations(folder: ReleaseFolder, unit: ReleaseUnit) -> list[Declared]:
    """Each component's declarations, from the release's own sdists (refused if they are bad)."""
    found = []
    for component in unit.components:
        sdist = next(folder.dist.glob(f"{component.project_name}-*.tar.gz"), None)
        declared = declared_in_sdist(sdist) if sdist else Declared(source=f"{component.dir}/pyproject.toml")
        problems = declared.problems()
        if problems:
            raise CudaCiError(*problems)
        found.append(declared)
    return found


def build_docs(
    folder: ReleaseFolder, repo: Path, reporter: Reporter, *, alongside_validate: bool = False
) -> list[Path]:
    """Build ``docs/<distribution>/`` for every component of the release unit.

    On its own, docs needs a validated folder; a release runs it side by side with validate
    (publish still needs both).
    """
    manifest = folder.load()
    unit = get_unit(manifest["component"])
    if "validation" not in manifest and not alongside_validate:
        raise CudaCiError(
            f"{folder.path} is not validated yet: run `cuda-ci validate --release-dir {folder.path}` first"
        )
    siblings = folder_siblings(folder.path, manifest["commit"], unit)
    wheels = [folder.path / f["path"] for f in manifest["files"] if f["kind"] == "wheel"]
    if not any(installable_here(w.name) for w in wheels):
        raise CudaCiError(f"no wheel in {folder.dist} installs on this machine: build docs where one does")
    declared = release_declarations(folder, unit)
    requirements = docs_requirements(declared)
    from_run = [r for d in declared for r in d.optional_group(DOCS_GROUP, ()) if is_component(r)]
    with tempfile.TemporaryDirectory(prefix="cuda-ci-docs-") as tmp:
        env = Env.create(Path(tmp) / "env", reporter)
        with reporter.step("install this run's wheels and the docs group"):
            install_from_run(
                env,
                dist=folder.dist,
                version=manifest["version"],
                unit=unit,
                siblings=siblings,
                snapshot=manifest["snapshot"],
                what="docs install of this run's wheels",
                reporter=reporter,
                extras=install_extras(folder.dist, unit),
                requirements=from_run,
            )
            # Sphinx from a kept tool environment; this run's wheels only ever in a fresh one.
            tools = sphinx_env(requirements, reporter)
            if tools is not None:
                env.extend_with(tools, reporter)
            else:
                env.pip_install(requirements, what="install of the docs group", reporter=reporter, isolated=False)
        # The components' Sphinx builds are independent processes: side by side.
        children = {component: reporter.child() for component in unit.components}

        def sphinx(component: Component) -> Path:
            return _sphinx(component, folder, env, Path(tmp), children[component], manifest["version"])

        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="cuda-ci-docs") as pool:
            futures = [pool.submit(sphinx, component) for component in unit.components]
            wait(futures)
        for component in unit.components:
            reporter.adopt(children[component])
        failures = [error for f in futures if (error := f.exception()) is not None]
        for error in failures:
            if not isinstance(error, CudaCiError):
                raise error
        if failures:  # every component's Sphinx problems, not only the first
            raise CudaCiError(*(p for e in failures if isinstance(e, CudaCiError) for p in e.problems))
        return [f.result() for f in futures]


def _sphinx(component: Component, folder: ReleaseFolder, env: Env, tmp: Path, reporter: Reporter, version: str) -> Path:
    """``docs/<distribution>/`` from the component's sdist in ``dist/``, warnings as errors;
    ``SPHINX_<DIST>_VER`` tells conf.py the version (upstream's docs build script sets it so)."""
    sdist = next(folder.dist.glob(f"{component.project_name}-*.tar.gz"), None)
    if sdist is None:
        raise CudaCiError(
            f"no {component.distribution} sdist in {folder.dist}: docs are built from the release's sdist"
        )
    source = extract_sdist(sdist, tmp / component.dir)
    out = folder.docs / component.distribution
    if folder.docs.is_symlink() or out.is_symlink():  # never delete or write outside the folder
        raise CudaCiError(f"{out} is (or is inside) a symbolic link: a release folder holds only plain folders")
    shutil.rmtree(out, ignore_errors=True)
    with reporter.step(f"sphinx -W {component.distribution}"):
        argv = [
            str(env.python),
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(source / "docs" / "source"),
            str(out),
        ]
        what = f"Sphinx build of {component.distribution} docs"
        environ = clean_environ(**{sphinx_version_variable(component.distribution): version})
        run(argv, what=what, reporter=reporter, cwd=tmp, env=tool_environ(environ), live=True)
    shutil.rmtree(out / ".doctrees", ignore_errors=True)
    return out
