from __future__ import annotations

import os
from importlib.metadata import version

import pytest
from pytest_mock import MockerFixture

import cuda.core
from cuda.bindings.driver import CUDADriverNotFoundError
from cuda.core import Device, system


@pytest.fixture
def no_driver(mocker: MockerFixture) -> None:
    mocker.patch.dict(os.environ, {"CUDA_PATHFINDER_CUDA_PATH": "/nonexistent/libcuda.so.1"})


def test_version_info_is_the_installed_distributions() -> None:
    assert str(cuda.core.version_info) == version("cuda-core")


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
