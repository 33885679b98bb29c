"""What the Dagger module's graphs are made of besides the object itself: the pinned images and the
paths in them, the cuda-ci argv the functions share, the errors they raise. No engine call here."""

from __future__ import annotations

import uuid
from typing import Literal

from cuda_ci.plan.release import TOOL_PYTHON_VERSION

# cibuildwheel's pinned list (cibuildwheel/resources/pinned_docker_images.cfg, [x86_64]
# manylinux_2_28, "2026.10.26-1"); a test keeps it equal to the installed cibuildwheel's pin.
TOOLING_IMAGE = (
    "quay.io/pypa/manylinux_2_28_x86_64@sha256:e0adf18521ad35192df733a6c62d35df7801957d24e0470238aacecfab2188a3"
)
# The tooling image of each platform a graph may run on alone (`dagger call wheels --platform`): on a
# native arm64 engine its plan and preflight run in the same list's [aarch64] manylinux_2_28, not emulated.
TOOLING_IMAGES = {
    "linux/amd64": TOOLING_IMAGE,
    "linux/arm64": (
        "quay.io/pypa/manylinux_2_28_aarch64@sha256:a3e02308c822fb6ce0d12248b0c941817ba5e1a1bc9e7bb5929f29c50eaa40a9"
    ),
}
# nvidia/cuda:12.6.3-base-ubuntu24.04, the digest published in John the Ripper's release build
# environments (docs: "Docker Image: FROM nvidia/cuda:12.6.3-base-ubuntu24.04@sha256:c87e7893...").
CUDA_IMAGE = (
    "nvidia/cuda:12.6.3-base-ubuntu24.04@sha256:c87e78933f4c16e3272123bf2f75537306596d0fbaa395a29696a22786e5ee0e"
)
PACKAGES_DIR = "/srv/packages"
PYPISERVER_ARGS = [
    *("/opt/cuda-ci/bin/pypi-server", "run", "-p", "8080", "-i", "0.0.0.0", "-a", ".", "-P", "."),
    *("--disable-fallback", "--hash-algo", "sha256", PACKAGES_DIR),
]
CUDA_CI = "/opt/cuda-ci/bin/cuda-ci"
# Where a container holds the lock's requirement file (toolchain.DEV_REQUIREMENTS) it installs from.
LOCKED_TOOLS = "/opt/cuda-ci-tools.txt"
# The context of a local module call is the repository as it is on disk, `.git` included:
# setuptools-scm needs its full history and tags, so nothing below may match under `.git` (a branch
# named `build` is `.git/refs/heads/build`, a worktree `build` is `.git/worktrees/build`). The engine
# applies these as BuildKit's exclude patterns (moby/patternmatcher, via fsutil): anchored at the
# context's root, `**` any number of folders. So every pattern starts with a named top folder, never
# with a wildcard that could reach into `.git`. (A re-include such as "!.git/**" is not used: Dagger
# has handled "!" patterns as includes in some releases, which would load `.git` alone.)
CODE_FOLDERS = ("cuda_*", "dagger", "tests", "bench")
SOURCE_IGNORE = [
    *(".venv", ".release", "build", "dist", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis"),
    *("bench/results", "dagger/sdk", "dagger/.venv", "dagger/build", "dagger/dist"),
    *("cuda_*/.venv", "cuda_*/**/build", "cuda_*/**/dist", "cuda_*/**/*.so", "cuda_*/**/*.pyd"),
    *(f"{folder}/**/__pycache__" for folder in CODE_FOLDERS),
    *(f"{folder}/**/*.egg-info" for folder in CODE_FOLDERS),
]


def python_path(version: str) -> str:
    """The manylinux image's interpreter for ``3.12`` → ``/opt/python/cp312-cp312/bin/python``
    (free-threaded ``3.14t`` → ``/opt/python/cp314-cp314t/bin/python``)."""
    tag = "cp" + version.replace(".", "").removesuffix("t")
    return f"/opt/python/{tag}-{tag}{'t' if version.endswith('t') else ''}/bin/python"


TOOL_PYTHON = python_path(TOOL_PYTHON_VERSION)
# Where a plan node's placeholders point inside its container (cuda_ci.plan.release.fill).
NODE_PATHS = {
    "repo": "/src",
    "release": "/release",
    "out": "/out",
    "prebuilt": "/prebuilt",
    "preflight": "/preflight/preflight.json",
    "extra": "/extra",
    "reports": "/reports/wheel-reports.json",
}


def selection(
    tag: str | None, component: str | None, snapshot: bool, rehearse: bool = False, ref: str | None = None
) -> list[str]:
    """The release selection as the CLI's flags, every one given passed on: the CLI checks the
    combination (a snapshot with a tag, a ref without a rehearsal) and refuses it, here as there."""
    return [
        *([f"--tag={tag}"] if tag is not None else []),
        *([f"--component={component}"] if component else []),
        *(["--snapshot"] if snapshot else []),
        *(["--rehearse"] if rehearse else []),
        *([f"--ref={ref}"] if ref is not None else []),
    ]


class MissingHistoryError(Exception):
    """The module's source cannot tell setuptools-scm the version."""


def new_invocation() -> str:
    """A value unique to one function call."""
    return uuid.uuid4().hex


CacheTrust = Literal["release", "untrusted"]


def cache_volumes(trust: CacheTrust) -> dict[str, str]:
    """The cache volumes a container mounts (path → volume name): a release's (a tag, a rehearsal)
    are never shared with untrusted work (CI jobs, snapshots), whose code could write into them."""
    prefix = "cuda-ci-release" if trust == "release" else "cuda-ci"
    return {
        "/root/.cache/pip": f"{prefix}-pip",
        "/root/.cache/uv": f"{prefix}-uv",
        "/root/.cache/cuda-ci": f"{prefix}-tool-envs",
    }


def trust_of(flags: list[str]) -> CacheTrust:
    """A selection's (see :func:`selection`) cache namespace: a snapshot is untrusted work."""
    return "untrusted" if "--snapshot" in flags else "release"
