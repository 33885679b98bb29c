"""Docs: Sphinx (-W) builds each component's docs from this run's sdist, with its wheel installed."""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from pathlib import Path

from cuda_ci.components import get_unit
from cuda_ci.envs import Env, install_from_run
from cuda_ci.errors import CudaCiError
from cuda_ci.log import Reporter
from cuda_ci.manifest import ReleaseFolder
from cuda_ci.process import run
from cuda_ci.siblings import SIBLINGS_DIR, sibling_wheels
from cuda_ci.wheels import installable_here

SPHINX_REQUIREMENT = "sphinx>=7"


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
    siblings = sibling_wheels(repo, manifest["commit"], unit, folder.path / SIBLINGS_DIR, reporter)
    wheels = [folder.path / f["path"] for f in manifest["files"] if f["kind"] == "wheel"]
    if not any(installable_here(w.name) for w in wheels):
        raise CudaCiError(f"no wheel in {folder.dist} installs on this machine: build docs where one does")
    built: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="cuda-ci-docs-") as tmp:
        env = Env.create(Path(tmp) / "env", reporter)
        with reporter.step("install this run's wheels and Sphinx"):
            install_from_run(
                env,
                dist=folder.dist,
                version=manifest["version"],
                unit=unit,
                siblings=siblings,
                snapshot=manifest["snapshot"],
                what="docs install of this run's wheels",
                reporter=reporter,
            )
            env.pip_install([SPHINX_REQUIREMENT], what="install of Sphinx", reporter=reporter, isolated=False)
        for component in unit.components:
            sdist = next(folder.dist.glob(f"{component.project_name}-*.tar.gz"), None)
            if sdist is None:
                raise CudaCiError(
                    f"no {component.distribution} sdist in {folder.dist}: docs are built from the release's sdist"
                )
            source = _extract(sdist, Path(tmp) / component.dir)
            out = folder.docs / component.distribution
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
                run(argv, what=f"Sphinx build of {component.distribution} docs", reporter=reporter, cwd=Path(tmp))
            shutil.rmtree(out / ".doctrees", ignore_errors=True)
            built.append(out)
    return built


def _extract(sdist: Path, dest: Path) -> Path:
    with tarfile.open(sdist, "r:gz") as archive:
        archive.extractall(dest, filter="data")
    return next(p for p in dest.iterdir() if p.is_dir())
