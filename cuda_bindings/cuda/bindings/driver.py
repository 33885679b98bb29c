"""A few CUDA driver API calls; the driver library is loaded at first use.

Every function raises :class:`CUDADriverNotFoundError` when no driver can be found or opened
(machines without an NVIDIA driver), and :class:`CUDAError` when a call returns a non-zero
``CUresult``; the latter carries ``code`` (the number) and ``name`` (for example
``CUDA_ERROR_NO_DEVICE``).
"""

from __future__ import annotations

import threading

from cuda.bindings import _driver
from cuda.pathfinder import DynamicLibNotFoundError, find_nvidia_dynamic_lib

CUDAError = _driver.CUDAError

CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75
CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76

_lock = threading.Lock()
_initialized = False


class CUDADriverNotFoundError(RuntimeError):
    """No CUDA driver library (``libcuda.so.1``, ``nvcuda.dll``) could be found or opened."""


def _ensure_initialized() -> None:
    """Open the driver (once) and call ``cuInit(0)``."""
    global _initialized
    if _initialized:
        return
    with _lock:
        if _initialized:
            return
        try:
            _driver._load(find_nvidia_dynamic_lib("cuda"))
        except (DynamicLibNotFoundError, _driver.DriverLoadError) as error:
            raise CUDADriverNotFoundError(
                "CUDA driver not available: install the NVIDIA driver, or run on a machine "
                f"with an NVIDIA GPU.\n{error}"
            ) from error
        _driver.cuInit(0)
        _initialized = True


def cuInit(flags: int = 0) -> None:
    """Initialise the driver API (done implicitly by every other function)."""
    _ensure_initialized()
    _driver.cuInit(flags)


def cuDriverGetVersion() -> int:
    """The driver's CUDA version as ``1000 * major + 10 * minor``."""
    _ensure_initialized()
    return int(_driver.cuDriverGetVersion())


def cuDeviceGetCount() -> int:
    """The number of CUDA devices."""
    _ensure_initialized()
    return int(_driver.cuDeviceGetCount())


def cuDeviceGet(ordinal: int) -> int:
    """The device handle for ``ordinal``."""
    _ensure_initialized()
    return int(_driver.cuDeviceGet(ordinal))


def cuDeviceGetName(device: int) -> str:
    """The device's marketing name."""
    _ensure_initialized()
    return str(_driver.cuDeviceGetName(device))


def cuDeviceTotalMem(device: int) -> int:
    """The device's total memory in bytes."""
    _ensure_initialized()
    return int(_driver.cuDeviceTotalMem(device))


def cuDeviceGetAttribute(attribute: int, device: int) -> int:
    """One integer attribute of the device."""
    _ensure_initialized()
    return int(_driver.cuDeviceGetAttribute(attribute, device))


def compute_capability(device: int) -> tuple[int, int]:
    """``(major, minor)`` compute capability of the device."""
    return (
        cuDeviceGetAttribute(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device),
        cuDeviceGetAttribute(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device),
    )


__all__ = [
    "CUDADriverNotFoundError",
    "CUDAError",
    "compute_capability",
    "cuDeviceGet",
    "cuDeviceGetAttribute",
    "cuDeviceGetCount",
    "cuDeviceGetName",
    "cuDeviceTotalMem",
    "cuDriverGetVersion",
    "cuInit",
]
