"""``validate --extra-dist``: wheels built elsewhere in the same run join the release folder.

Every check that needs no copy is made before the first file is copied in; when validation then
fails, what was added is taken out again, so that a refused ``--extra-dist`` leaves the folder as it was.
"""

from __future__ import annotations

import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cuda_ci.build.builder import sbom_entries
from cuda_ci.infra.components import ReleaseUnit
from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.manifest import Manifest, ReleaseFolder, file_entry
from cuda_ci.validate.distfiles import DistProblem, identify

PURE_TAG = "py3-none-any"


def extra_wheels(folder: ReleaseFolder, unit: ReleaseUnit, extra: Path) -> list[Path]:
    """The wheels of ``extra`` that may join ``folder``; every problem refused at once, before any copy."""
    if not extra.is_dir():
        raise CudaCiError(f"--extra-dist {str(extra)!r} does not exist or is not a directory")
    wheels = sorted(extra.glob("*.whl"))
    if not wheels:
        raise CudaCiError(f"--extra-dist {str(extra)!r} holds no .whl files")
    problems = [problem for wheel in wheels if (problem := _refusal(folder, unit, wheel)) is not None]
    if problems:
        raise CudaCiError(*problems, f"--extra-dist refused: nothing was copied into {folder.path}")
    return wheels


def _refusal(folder: ReleaseFolder, unit: ReleaseUnit, wheel: Path) -> str | None:
    if not stat.S_ISREG(wheel.lstat().st_mode):
        return f"--extra-dist: {wheel.name} is a link or not a plain file: hand over the wheel itself"
    try:
        identify(wheel)
    except DistProblem as error:
        return f"--extra-dist: {error}"
    if (folder.dist / wheel.name).exists():
        return f"--extra-dist: {wheel.name} is already in {folder.dist}"
    if all(c.wheel == "pure" for c in unit.components) and not wheel.name.endswith(f"-{PURE_TAG}.whl"):
        return (
            f"--extra-dist: {wheel.name} is a platform wheel, but {unit.name} builds only a pure ({PURE_TAG}) "
            "wheel, which this release has already: validate it without --extra-dist"
        )
    return None


def add_extra_dist(folder: ReleaseFolder, manifest: Manifest, wheels: list[Path], epoch: int) -> list[str]:
    """Copy ``wheels`` (checked by :func:`extra_wheels`) into ``dist/`` and the manifest, each with its SBOM."""
    names = []
    for wheel in wheels:
        target = folder.dist / wheel.name
        shutil.copy2(wheel, target, follow_symlinks=False)
        entry = file_entry(folder.path, target, "wheel", str(identify(target).name))
        manifest["files"] += [entry, *sbom_entries(folder, [entry], epoch)]
        names.append(wheel.name)
    return names


@contextmanager
def taken_out_on_failure(folder: ReleaseFolder, manifest: Manifest) -> Iterator[None]:
    """Files the body adds to ``manifest`` (and the folder) are removed again if it fails."""
    before = {entry["path"] for entry in manifest["files"]}
    try:
        yield
    except BaseException:
        for entry in manifest["files"]:
            if entry["path"] not in before:
                (folder.path / entry["path"]).unlink(missing_ok=True)
        manifest["files"] = [entry for entry in manifest["files"] if entry["path"] in before]
        raise
