from __future__ import annotations

import pytest

from cuda.bindings.driver import CUDADriverNotFoundError
from cuda.core import Device, system


@pytest.fixture
def no_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_PATHFINDER_CUDA_PATH", "/nonexistent/libcuda.so.1")


@pytest.mark.nogpu
@pytest.mark.usefixtures("no_driver")
def test_device_without_a_driver_raises_the_documented_error() -> None:
    with pytest.raises(CUDADriverNotFoundError, match="CUDA driver not available"):
        Device(0)


@pytest.mark.nogpu
@pytest.mark.usefixtures("no_driver")
@pytest.mark.parametrize("attribute", ["driver_version", "num_devices"])
def test_system_without_a_driver_raises_the_documented_error(attribute: str) -> None:
    with pytest.raises(CUDADriverNotFoundError, match="CUDA driver not available"):
        getattr(system, attribute)


@pytest.mark.gpu
def test_device_on_a_gpu_machine() -> None:
    assert system.num_devices >= 1
    assert system.driver_version >= (11, 0)
    device = Device(0)
    assert device.name
    assert device.total_memory > 0
    assert device.compute_capability >= (3, 0)
