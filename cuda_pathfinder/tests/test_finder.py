from __future__ import annotations

import _ctypes
import ctypes
import os
from pathlib import Path

import pytest
from pytest_mock import MockerFixture

from cuda.pathfinder import (
    DynamicLibNotFoundError,
    find_nvidia_dynamic_lib,
    library_filenames,
    load_nvidia_dynamic_lib,
)

MISSING = "definitely-not-an-nvidia-library"


def test_not_found_lists_every_place_searched(tmp_path: Path) -> None:
    env = {"CUDA_HOME": str(tmp_path / "home"), "CUDA_PATH": str(tmp_path / "path")}
    with pytest.raises(DynamicLibNotFoundError) as info:
        find_nvidia_dynamic_lib(MISSING, environ=env)
    message = str(info.value)
    assert f"NVIDIA library {MISSING!r} not found" in message
    assert str(tmp_path / "home" / "lib64") in message
    assert str(tmp_path / "path" / "bin") in message
    assert "system loader" in message
    assert "CUDA_PATHFINDER_DEFINITELY_NOT_AN_NVIDIA_LIBRARY_PATH" in message
    sources = {step.source for step in info.value.searched}
    assert {"$CUDA_HOME", "$CUDA_PATH", "system loader"} <= sources


def test_explicit_override_wins(tmp_path: Path) -> None:
    target = tmp_path / "libwhatever.so"
    target.write_bytes(b"\x7fELF")
    env = {"CUDA_PATHFINDER_CUDART_PATH": str(target), "CUDA_HOME": "/nonexistent"}
    assert find_nvidia_dynamic_lib("cudart", environ=env) == str(target)


def test_cuda_home_lib64(tmp_path: Path) -> None:
    lib = tmp_path / "lib64" / "libnvrtc.so.13"
    lib.parent.mkdir()
    lib.write_bytes(b"")
    assert find_nvidia_dynamic_lib("nvrtc", environ={"CUDA_HOME": str(tmp_path)}) == str(lib)


def test_driver_sonames() -> None:
    assert library_filenames("cuda", "linux")[0] == "libcuda.so.1"
    assert library_filenames("cuda", "win32") == ("nvcuda.dll",)


def test_load_real_library_through_override() -> None:
    # Any real shared object proves the load path; _ctypes is one on every CPython.
    handle = load_nvidia_dynamic_lib("cudart", environ={"CUDA_PATHFINDER_CUDART_PATH": _ctypes.__file__})
    assert isinstance(handle, ctypes.CDLL)


@pytest.mark.gpu
def test_finds_the_driver_on_a_gpu_machine() -> None:
    path = find_nvidia_dynamic_lib("cuda", environ=dict(os.environ))
    assert "cuda" in os.path.basename(path)


def test_site_packages_nvidia_lib_folders_are_searched(tmp_path: Path, mocker: MockerFixture) -> None:
    from cuda.pathfinder import _finder

    lib = tmp_path / "nvidia" / "cublas" / "lib" / "libcublas.so.13"
    lib.parent.mkdir(parents=True)
    lib.write_bytes(b"")
    mocker.patch.object(_finder, "_site_package_dirs", return_value=[str(tmp_path)])
    assert find_nvidia_dynamic_lib("cublas", environ={}) == str(lib)
