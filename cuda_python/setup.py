"""cuda-python pins the cuda-bindings release of its own version (one `vX.Y.Z` tag releases both)."""

from __future__ import annotations

from email.parser import HeaderParser
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent


def own_version() -> str:
    """The version this build gets: from PKG-INFO inside an sdist, otherwise from the git tags."""
    pkg_info = HERE / "PKG-INFO"
    if pkg_info.is_file():
        return str(HeaderParser().parsestr(pkg_info.read_text(encoding="utf-8"))["Version"])
    from setuptools_scm import Configuration, _get_version

    config = Configuration.from_file(str(HERE / "pyproject.toml"), dist_name="cuda-python")
    version = _get_version(config, force_write_version_files=False)
    if version is None:
        raise RuntimeError("setuptools-scm found no version for cuda-python: build from a git checkout or an sdist")
    return version


setup(install_requires=[f"cuda-bindings=={own_version()}"])
