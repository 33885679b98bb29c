from __future__ import annotations

import pytest

from cuda.bindings import _driver, driver

ENTRY_POINTS = [
    (driver.cuInit, ()),
    (driver.cuDriverGetVersion, ()),
    (driver.cuDeviceGetCount, ()),
    (driver.cuDeviceGet, (0,)),
    (driver.cuDeviceGetName, (0,)),
    (driver.cuDeviceTotalMem, (0,)),
    (driver.cuDeviceGetAttribute, (75, 0)),
    (driver.compute_capability, (0,)),
]


def test_extension_is_compiled() -> None:
    assert _driver.__file__.endswith((".so", ".pyd"))
    assert issubclass(driver.CUDAError, RuntimeError)


@pytest.mark.nogpu
@pytest.mark.parametrize(("call", "args"), ENTRY_POINTS, ids=lambda v: getattr(v, "__name__", ""))
def test_without_a_driver_every_entry_point_raises(call, args, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CUDA_PATHFINDER_CUDA_PATH", "/nonexistent/libcuda.so.1")
    with pytest.raises(driver.CUDADriverNotFoundError, match="CUDA driver not available"):
        call(*args)


def test_a_library_that_is_not_a_driver_is_refused(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    if _driver._is_loaded():
        pytest.skip("a driver is already loaded in this process")
    monkeypatch.setenv("CUDA_PATHFINDER_CUDA_PATH", _driver.__file__)
    with pytest.raises(driver.CUDADriverNotFoundError, match="is not a CUDA driver"):
        driver.cuDriverGetVersion()


def test_calls_before_loading_are_refused_by_the_extension() -> None:
    if _driver._is_loaded():
        pytest.skip("a driver is already loaded in this process")
    with pytest.raises(_driver.DriverLoadError, match="not loaded"):
        _driver.cuDriverGetVersion()


@pytest.mark.gpu
def test_driver_calls_on_a_gpu_machine() -> None:
    assert driver.cuDriverGetVersion() >= 11000
    count = driver.cuDeviceGetCount()
    assert count >= 1
    device = driver.cuDeviceGet(0)
    assert driver.cuDeviceGetName(device)
    assert driver.cuDeviceTotalMem(device) > 0
    assert driver.compute_capability(device)[0] >= 3


@pytest.mark.gpu
def test_bad_ordinal_raises_cuda_error_with_code_and_name() -> None:
    with pytest.raises(driver.CUDAError) as info:
        driver.cuDeviceGet(10_000)
    assert info.value.code == 101
    assert info.value.name == "CUDA_ERROR_INVALID_DEVICE"
