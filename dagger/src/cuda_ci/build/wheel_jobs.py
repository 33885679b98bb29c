"""The wheels cibuildwheel selects for a component (every platform), and the Linux wheel jobs: identifier,
architecture, pinned image, interpreter.

Everything comes from cibuildwheel's own options API (its ``[tool.cibuildwheel]`` reading and its
pinned, digest-addressed manylinux images), so the Dagger graph builds exactly what cibuildwheel
would, and validate expects exactly those identifiers. Each job runs ``cuda-ci build --wheels-only``,
which repairs the wheel with cuda-ci's own ``auditwheel repair`` step (not cibuildwheel's repair command).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

Platform = Literal["linux", "macos", "windows"]


@dataclass(frozen=True)
class LinuxWheelJob:
    identifier: str  # e.g. cp312-manylinux_x86_64
    arch: str  # x86_64 | aarch64
    image: str  # quay.io/pypa/manylinux_2_28_x86_64@sha256:...
    python: PurePosixPath  # the interpreter inside the image

    @property
    def platform(self) -> str:
        """The OCI platform of the container that runs this job."""
        return {"x86_64": "linux/amd64", "aarch64": "linux/arm64"}[self.arch]


def _selection(package_dir: Path, platform: Platform, env: Mapping[str, str]) -> tuple[Any, list[Any]]:
    """cibuildwheel's options for ``package_dir`` on ``platform`` and the configurations they select."""
    from cibuildwheel.options import CommandLineArguments, compute_options

    arguments = dataclasses.replace(CommandLineArguments.defaults(), platform=platform, package_dir=package_dir)
    options = compute_options(platform, arguments, env=dict(env))
    module = importlib.import_module(f"cibuildwheel.platforms.{platform}")
    configs = module.get_python_configurations(options.globals.build_selector, options.globals.architectures)
    return options, list(configs)


def selected_identifiers(package_dir: Path, platform: Platform, env: Mapping[str, str] | None = None) -> list[str]:
    """The build identifiers cibuildwheel selects for ``package_dir`` on ``platform`` (``linux``,
    ``windows``, ``macos``), read in-process with its own selection logic; ``env``: ``CIBW_*`` overrides."""
    return [config.identifier for config in _selection(package_dir, platform, env or {})[1]]


def linux_wheel_jobs(package_dir: Path) -> list[LinuxWheelJob]:
    """One job per build identifier cibuildwheel selects on Linux for ``package_dir``."""
    options, configs = _selection(package_dir, "linux", {})
    jobs: list[LinuxWheelJob] = []
    for config in configs:
        build_options = options.build_options(config.identifier)
        images = build_options.manylinux_images or {}
        arch = config.identifier.rsplit("_", 1)[-1] if "aarch64" not in config.identifier else "aarch64"
        arch = "x86_64" if config.identifier.endswith("x86_64") else arch
        jobs.append(
            LinuxWheelJob(
                identifier=config.identifier,
                arch=arch,
                image=images[arch],
                python=PurePosixPath(config.path) / "bin" / "python",
            )
        )
    return jobs


def tooling_image(jobs: list[LinuxWheelJob] | None = None) -> str:
    """The x86_64 manylinux image (cibuildwheel's pin) that also runs cuda-ci itself."""
    from cibuildwheel.options import _get_pinned_container_images

    pinned: str = _get_pinned_container_images()["x86_64"]["manylinux_2_28"]
    return pinned
