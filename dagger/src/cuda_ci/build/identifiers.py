"""Wheel file facts through ``packaging``: build identifiers and what this machine can install."""

from __future__ import annotations

import os
import platform
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from packaging.tags import Tag, sys_tags
from packaging.utils import parse_wheel_filename

from cuda_ci.infra.components import Component
from cuda_ci.infra.errors import CommandError, UsageError
from cuda_ci.infra.process import capture, probe_interpreter

# manylinux_2_34_x86_64 → manylinux_x86_64, as cibuildwheel names its build identifiers.
_PLATFORM_FAMILY = re.compile(r"^(manylinux|musllinux)(?:_\d+_\d+|\d+)_(?P<arch>.+)$")
_MACOS = re.compile(r"^macosx_\d+_\d+_(?P<arch>.+)$")


def identifier_of(tag: Tag) -> str:
    """The cibuildwheel-style build identifier a wheel tag satisfies, e.g. ``cp311-manylinux_x86_64``."""
    if tag.platform == "any":
        return str(tag)  # py3-none-any
    # A free-threaded build (cp314-cp314t) is cibuildwheel's cp314t identifier.
    interpreter = tag.abi if tag.abi == f"{tag.interpreter}t" else tag.interpreter
    match = _PLATFORM_FAMILY.match(tag.platform)
    if match:
        return f"{interpreter}-{match.group(1)}_{match.group('arch')}"
    match = _MACOS.match(tag.platform)
    if match:
        return f"{interpreter}-macosx_{match.group('arch')}"
    return f"{interpreter}-{tag.platform}"


def wheel_identifiers(filename: str) -> set[str]:
    _, _, _, tags = parse_wheel_filename(filename)
    return {identifier_of(tag) for tag in tags}


def host_identifier() -> str:
    """This interpreter's build identifier (the expected platform wheel on the host runner)."""
    interpreter = f"cp{sys.version_info.major}{sys.version_info.minor}"
    machine = platform.machine().lower()
    if sys.platform.startswith("linux"):
        libc = "musllinux" if platform.libc_ver()[0] != "glibc" else "manylinux"
        return f"{interpreter}-{libc}_{machine}"
    if sys.platform == "win32":
        return f"{interpreter}-win_{'arm64' if machine == 'arm64' else 'amd64'}"
    return f"{interpreter}-macosx_{machine}"


# An interpreter's part of cibuildwheel's identifier (cp314, cp314t for a free-threaded build) and its platform.
_INTERPRETER = (
    "import sys, sysconfig; free = sysconfig.get_config_var('Py_GIL_DISABLED'); "
    "print(f'cp{sys.version_info[0]}{sys.version_info[1]}' + ('t' if free else ''), sysconfig.get_platform())"
)


def interpreter_of(python: str) -> tuple[str, str]:
    """Another interpreter's ``cpXY`` (``cpXYt`` free-threaded) and platform, as it answers."""
    tag, _, platform_name = probe_interpreter(python, _INTERPRETER).strip().partition(" ")
    return tag, platform_name


def same_wheels(python: str, other: str) -> bool:
    """Whether two interpreters install the same platform wheels: version, free-threading and platform
    (``/opt/python/cp312-cp312/bin/python`` and a venv of it do; ``3.14`` and ``3.14t`` do not)."""
    return python == other or interpreter_of(python) == interpreter_of(other)


def installable_here(filename: str) -> bool:
    """Whether this interpreter supports one of the wheel's tags."""
    _, _, _, tags = parse_wheel_filename(filename)
    supported = set(sys_tags())
    return any(tag in supported for tag in tags)


def native_archs(platform_name: str) -> dict[str, str]:
    """cibuildwheel's settings for a native build on ``platform_name``: a Windows runner builds its own
    architecture only (windows-latest AMD64, windows-11-arm ARM64; the workflows run one job per
    architecture and validate expects them all), never cross-compiles a wheel it cannot import-test."""
    return {"CIBW_ARCHS_WINDOWS": "native"} if platform_name == "windows" else {}


def cibuildwheel_identifiers(
    package_dir: Path, platform_name: str, environ: Mapping[str, str] | None = None
) -> list[str]:
    """The identifiers the component's ``[tool.cibuildwheel]`` selects on ``platform_name`` (``environ``:
    ``CIBW_*`` settings of the build, e.g. :func:`native_archs`)."""
    argv = [
        sys.executable,
        "-m",
        "cibuildwheel",
        "--print-build-identifiers",
        "--platform",
        platform_name,
        str(package_dir),
    ]
    result = capture(argv, timeout=120)
    if result.returncode != 0:
        raise CommandError("cibuildwheel --print-build-identifiers", result.returncode, result.stderr)
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


CONTAINER_ENGINES = ("docker", "podman")


def linux_container_engine(environ: Mapping[str, str] | None = None) -> str | None:
    """The engine cibuildwheel builds Linux wheels in, or None to build with this interpreter.

    ``CUDA_CI_CONTAINER_ENGINE`` chooses (``docker``, ``podman`` or ``none``); by default
    (``auto``) the first of docker and podman whose ``info`` answers.
    """
    chosen = (os.environ if environ is None else environ).get("CUDA_CI_CONTAINER_ENGINE", "auto")
    if chosen == "none":
        return None
    if chosen in CONTAINER_ENGINES:
        return chosen
    if chosen != "auto":
        raise UsageError(f"CUDA_CI_CONTAINER_ENGINE={chosen!r}: choose auto, docker, podman or none")
    for engine in CONTAINER_ENGINES:
        binary = shutil.which(engine)
        probe = capture([binary, "info"], timeout=60) if binary else None
        if probe is not None and probe.returncode == 0:
            return engine
    return None


def kind_problem(component: Component, filename: str) -> str | None:
    """Why ``filename`` is not a wheel of ``component``'s kind (registry: pure or platform), or None.

    A pure component's wheels are ``none``/``any``; a platform component's name a platform, and on
    Linux a repaired one (``manylinux``/``musllinux``): an unrepaired ``linux_x86_64`` wheel installs
    nowhere but on the machine that built it.
    """
    if not filename.endswith(".whl"):
        return None
    tags = parse_wheel_filename(filename)[3]
    pure = all(t.abi == "none" and t.platform == "any" for t in tags)
    if component.wheel == "pure" and not pure:
        return (
            f"{filename}: {component.distribution} is a pure component (components.py), but this wheel is "
            f"tagged {'.'.join(sorted(str(t) for t in tags))}: drop its compiled parts, or register it as platform"
        )
    if component.wheel == "platform" and pure:
        return (
            f"{filename}: {component.distribution} is a platform component (components.py), but this wheel "
            "is pure (none-any): its extension modules were not built; check its build backend"
        )
    unrepaired = [t.platform for t in tags if t.platform.startswith("linux_")]
    if component.wheel == "platform" and unrepaired:
        return (
            f"{filename}: tagged {unrepaired[0]}, a wheel that installs only where it was built: repair it "
            "with auditwheel (cuda-ci build does on Linux) or build it with cibuildwheel"
        )
    return None
