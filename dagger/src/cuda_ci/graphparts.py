"""What the Dagger module's graphs are made of besides the object itself: the pinned images and the
paths in them, the cuda-ci argv the functions share, the errors they raise. No engine call here."""

from __future__ import annotations

import uuid

# cibuildwheel's pinned list (cibuildwheel/resources/pinned_docker_images.cfg, [x86_64]
# manylinux_2_28, "2026.10.26-1"); a test keeps it equal to the installed cibuildwheel's pin.
TOOLING_IMAGE = (
    "quay.io/pypa/manylinux_2_28_x86_64@sha256:e0adf18521ad35192df733a6c62d35df7801957d24e0470238aacecfab2188a3"
)
# nvidia/cuda:12.6.3-base-ubuntu24.04, the digest published in John the Ripper's release build
# environments (docs: "Docker Image: FROM nvidia/cuda:12.6.3-base-ubuntu24.04@sha256:c87e7893...").
CUDA_IMAGE = (
    "nvidia/cuda:12.6.3-base-ubuntu24.04@sha256:c87e78933f4c16e3272123bf2f75537306596d0fbaa395a29696a22786e5ee0e"
)
TOOL_PYTHON_VERSION = "3.12"  # the tooling image's interpreter: cuda-ci runs, and validate smoke-tests, on it
PACKAGES_DIR = "/srv/packages"
PYPISERVER_ARGS = [
    *("/opt/cuda-ci/bin/pypi-server", "run", "-p", "8080", "-i", "0.0.0.0", "-a", ".", "-P", "."),
    *("--disable-fallback", "--hash-algo", "sha256", PACKAGES_DIR),
]
CUDA_CI = "/opt/cuda-ci/bin/cuda-ci"
# Where a container holds the lock's requirement file (toolchain.DEV_REQUIREMENTS) it installs from.
LOCKED_TOOLS = "/opt/cuda-ci-tools.txt"
# The context of a local module call is the repository as it is on disk, `.git` included:
# setuptools-scm needs its full history and tags. Nothing below may exclude `.git`. (A leading
# "!" only re-includes what an earlier pattern excluded, so "!.git" would do nothing.)
SOURCE_IGNORE = [
    ".venv",
    "**/.venv",
    ".release",
    "**/__pycache__",
    "**/*.egg-info",
    "**/build",
    "**/*.so",
    "**/*.pyd",
    "**/dist",
    "dagger/sdk",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "bench/results",
]


def python_path(version: str) -> str:
    """The manylinux image's interpreter for ``3.12`` → ``/opt/python/cp312-cp312/bin/python``
    (free-threaded ``3.14t`` → ``/opt/python/cp314-cp314t/bin/python``)."""
    tag = "cp" + version.replace(".", "").removesuffix("t")
    return f"/opt/python/{tag}-{tag}{'t' if version.endswith('t') else ''}/bin/python"


TOOL_PYTHON = python_path(TOOL_PYTHON_VERSION)


def selection(
    tag: str | None, component: str | None, snapshot: bool, rehearse: bool = False, ref: str | None = None
) -> list[str]:
    """The host CLI's release selection flags, the same checks as there."""
    if snapshot:
        return ["--snapshot", "--component", component or ""]
    rehearsal = ["--rehearse", *([f"--ref={ref}"] if ref is not None else [])] if rehearse else []
    return [f"--tag={tag or ''}", *([f"--component={component}"] if component else []), *rehearsal]


class MissingHistoryError(Exception):
    """The module's source cannot tell setuptools-scm the version."""


def new_invocation() -> str:
    """A value unique to one function call."""
    return uuid.uuid4().hex


def smoke_versions(identifiers: list[str]) -> list[str]:
    """Python versions of the x86_64 identifiers other than the tooling interpreter's (validate smoke-tests
    with that one itself)."""
    tooling = "cp" + TOOL_PYTHON_VERSION.replace(".", "")
    versions = []
    for identifier in identifiers:
        interpreter, _, platform = identifier.partition("-")
        if platform.endswith("x86_64") and interpreter != tooling:
            versions.append(f"{interpreter[2]}.{interpreter[3:]}")
    return versions
