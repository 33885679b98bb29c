"""Find and load NVIDIA shared libraries."""

from __future__ import annotations

from cuda.pathfinder._finder import (
    DynamicLibNotFoundError,
    SearchStep,
    find_nvidia_dynamic_lib,
    library_filenames,
    load_nvidia_dynamic_lib,
)

try:
    from importlib.metadata import version as _dist_version

    __version__ = _dist_version("cuda-pathfinder")
except Exception:  # pragma: no cover - only when run from a source tree without metadata
    __version__ = "0+unknown"

__all__ = [
    "DynamicLibNotFoundError",
    "SearchStep",
    "__version__",
    "find_nvidia_dynamic_lib",
    "library_filenames",
    "load_nvidia_dynamic_lib",
]
