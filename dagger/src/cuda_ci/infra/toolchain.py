"""cuda-ci's own tools where ``uv sync`` of dagger/uv.lock cannot run: the lock exported with hashes.

dagger/locked/*.txt are ``uv export``s of dagger/uv.lock (.ci/locked.py writes them; a test keeps them
equal to the lock). pip installs them with ``--require-hashes``, so every distribution is the lock's
version and file, and a file the lock does not name cannot be installed. cuda-ci itself comes from
its source afterwards, adding nothing (``--no-deps``) and building with the locked setuptools and
setuptools-scm (``--no-build-isolation``); the source's git history gives it its version.
"""

from __future__ import annotations

# Every tool a container may run (lint's ruff, mypy and zizmor included), and the runtime only.
DEV_REQUIREMENTS = "dagger/locked/cuda-ci-dev.txt"
RUNTIME_REQUIREMENTS = "dagger/locked/cuda-ci.txt"
# uv alone: .ci/setup installs it first, then ``uv sync``s the lock.
BOOTSTRAP_REQUIREMENTS = "dagger/locked/uv.txt"


def locked_install(pip: str, requirements: str) -> list[str]:
    """Install exactly the lock's distributions listed in ``requirements``, each file checked by sha256."""
    return [pip, "install", "--quiet", "--require-hashes", "-r", requirements]


def source_install(pip: str, source: str) -> list[str]:
    """cuda-ci from ``source`` (its ``dagger/`` folder) into an environment that holds its locked tools."""
    return [pip, "install", "--quiet", "--no-deps", "--no-build-isolation", source]
