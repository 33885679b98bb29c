"""CUDA driver API bindings; see :mod:`cuda.bindings.driver`."""

from __future__ import annotations

try:
    from importlib.metadata import version as _dist_version

    __version__ = _dist_version("cuda-bindings")
except Exception:  # pragma: no cover - only when run from a source tree without metadata
    __version__ = "0+unknown"
