"""The search for an NVIDIA shared library, one documented step after another."""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import site
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Sonames of the libraries whose file name does not follow ``lib<name>.so``.
_LINUX_SONAMES: dict[str, tuple[str, ...]] = {
    "cuda": ("libcuda.so.1", "libcuda.so"),
    "nvml": ("libnvidia-ml.so.1", "libnvidia-ml.so"),
}
_WINDOWS_DLLS: dict[str, tuple[str, ...]] = {
    "cuda": ("nvcuda.dll",),
    "nvml": ("nvml.dll",),
}


class DynamicLibNotFoundError(RuntimeError):
    """No file of the requested library was found; ``searched`` lists every place tried."""

    def __init__(self, name: str, searched: Sequence[SearchStep]) -> None:
        self.name = name
        self.searched = tuple(searched)
        places = "\n".join(f"  - {step.describe()}" for step in self.searched)
        super().__init__(
            f"NVIDIA library {name!r} not found. Searched, in order:\n{places}\n"
            f"Install the driver or toolkit, or set {override_variable(name)} to the file."
        )


@dataclass(frozen=True)
class SearchStep:
    """One place the finder looked: where, and which file names."""

    source: str
    location: str
    candidates: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.source}: {self.location} ({', '.join(self.candidates)})"


def override_variable(name: str) -> str:
    """The environment variable that names the library's file explicitly."""
    return f"CUDA_PATHFINDER_{name.upper().replace('-', '_')}_PATH"


def library_filenames(name: str, platform: str | None = None) -> tuple[str, ...]:
    """File names the library may have on ``platform`` (default: this one)."""
    platform = platform or sys.platform
    if platform.startswith("win"):
        return _WINDOWS_DLLS.get(name, (f"{name}64_*.dll", f"{name}.dll"))
    return _LINUX_SONAMES.get(name, (f"lib{name}.so", f"lib{name}.so.*"))


def _site_package_dirs() -> list[str]:
    dirs = list(site.getsitepackages()) if hasattr(site, "getsitepackages") else []
    user = site.getusersitepackages() if hasattr(site, "getusersitepackages") else None
    if isinstance(user, str):
        dirs.append(user)
    return [d for d in dict.fromkeys(dirs) if os.path.isdir(d)]


def _first_match(folder: str, names: Sequence[str]) -> str | None:
    for pattern in names:
        for path in sorted(glob.glob(os.path.join(folder, pattern))):
            if os.path.isfile(path):
                return path
    return None


def _search_steps(name: str, environ: Mapping[str, str]) -> list[SearchStep]:
    names = library_filenames(name)
    steps: list[SearchStep] = []
    for variable in ("CUDA_HOME", "CUDA_PATH"):
        root = environ.get(variable)
        if root:
            for sub in ("lib64", "lib", "bin"):
                steps.append(SearchStep(f"${variable}", os.path.join(root, sub), names))
    for site_dir in _site_package_dirs():
        for sub in ("lib", "bin"):
            steps.append(SearchStep("site-packages", os.path.join(site_dir, "nvidia", "*", sub), names))
    return steps


def _system_loader(name: str) -> str | None:
    """What the system loader would resolve: ``find_library`` first, then the soname itself."""
    found = ctypes.util.find_library(name)
    candidates = ([found] if found else []) + list(library_filenames(name)[:1])
    for candidate in candidates:
        try:
            ctypes.CDLL(candidate)
        except OSError:
            continue
        return candidate
    return None


def find_nvidia_dynamic_lib(name: str, environ: Mapping[str, str] | None = None) -> str:
    """Return the path (or loader name) of NVIDIA library ``name``.

    Raises:
        DynamicLibNotFoundError: nothing was found; the message lists every place searched.
    """
    environ = os.environ if environ is None else environ
    searched: list[SearchStep] = []
    override = environ.get(override_variable(name))
    if override:
        searched.append(SearchStep("override", f"${override_variable(name)}", (override,)))
        if os.path.isfile(override):
            return override
    for step in _search_steps(name, environ):
        searched.append(step)
        found = _first_match(step.location, step.candidates)
        if found:
            return found
    searched.append(SearchStep("system loader", "dlopen/LoadLibrary", library_filenames(name)))
    loaded = _system_loader(name)
    if loaded:
        return loaded
    raise DynamicLibNotFoundError(name, searched)


def load_nvidia_dynamic_lib(name: str, environ: Mapping[str, str] | None = None) -> ctypes.CDLL:
    """Find NVIDIA library ``name`` and load it into the process.

    Raises:
        DynamicLibNotFoundError: the library was not found anywhere.
    """
    path = find_nvidia_dynamic_lib(name, environ)
    return ctypes.CDLL(path)
