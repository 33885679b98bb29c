"""Pythonic access to CUDA devices: :class:`Device` and :data:`system`."""

from __future__ import annotations

from packaging.version import Version

from cuda.core._device import Device, System, system

try:
    from importlib.metadata import version as _dist_version

    __version__ = _dist_version("cuda-core")
except Exception:  # pragma: no cover - only when run from a source tree without metadata
    __version__ = "0+unknown"

version_info = Version(__version__)  # packaging: cuda-core's third-party runtime requirement

__all__ = ["Device", "System", "__version__", "system", "version_info"]
