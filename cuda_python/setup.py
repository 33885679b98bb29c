"""cuda-python pins the cuda-bindings release of its own version (one `vX.Y.Z` tag releases both)."""

from __future__ import annotations

import subprocess
import sys
from email.parser import HeaderParser
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent


def own_version() -> str:
    """The version this build gets: from PKG-INFO inside an sdist, otherwise from the git tags."""
    pkg_info = HERE / "PKG-INFO"
    if pkg_info.is_file():
        return str(HeaderParser().parsestr(pkg_info.read_text(encoding="utf-8"))["Version"])
    # setuptools-scm's command line: its stable interface, reading this pyproject's configuration.
    result = subprocess.run(
        [sys.executable, "-m", "setuptools_scm", "--config", str(HERE / "pyproject.toml")],
        cwd=HERE,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]

setup(install_requires=[f"cuda-bindings=={own_version()}"])
