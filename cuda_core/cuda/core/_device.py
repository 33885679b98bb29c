"""Devices and the system, over :mod:`cuda.bindings.driver`.

Without a driver every property raises
:class:`cuda.bindings.driver.CUDADriverNotFoundError`.
"""

from __future__ import annotations

from cuda.bindings import driver
from cuda.core import _variant

_impl = _variant.load()


class Device:
    """The CUDA device with ordinal ``device_id`` (default 0)."""

    def __init__(self, device_id: int = 0) -> None:
        self.device_id = device_id
        self._handle = driver.cuDeviceGet(device_id)

    def __repr__(self) -> str:
        return f"Device({self.device_id})"

    @property
    def name(self) -> str:
        """The device's name, e.g. ``NVIDIA H100 80GB HBM3``."""
        return driver.cuDeviceGetName(self._handle)

    @property
    def compute_capability(self) -> tuple[int, int]:
        """``(major, minor)``."""
        return driver.compute_capability(self._handle)

    @property
    def total_memory(self) -> int:
        """Total device memory in bytes."""
        return driver.cuDeviceTotalMem(self._handle)


class System:
    """Facts about the machine's CUDA driver and devices."""

    @property
    def driver_version(self) -> tuple[int, int]:
        """The driver's CUDA version as ``(major, minor)``."""
        major, minor = _impl.driver_version_tuple(driver.cuDriverGetVersion())
        return (major, minor)

    @property
    def num_devices(self) -> int:
        """How many CUDA devices the driver sees."""
        return driver.cuDeviceGetCount()


system = System()
