"""GPU-only tests skip without a driver, no-GPU tests skip with one (markers in this component's pyproject.toml)."""

from __future__ import annotations

import ctypes

import pytest


def _driver_present() -> bool:
    for name in ("libcuda.so.1", "nvcuda.dll"):
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    present = _driver_present()
    needs_gpu = pytest.mark.skip(reason="needs an NVIDIA driver (libcuda.so.1): run on a GPU machine")
    needs_no_gpu = pytest.mark.skip(reason="checks the no-driver behaviour: a driver is present here")
    for item in items:
        if "gpu" in item.keywords and not present:
            item.add_marker(needs_gpu)
        if "nogpu" in item.keywords and present:
            item.add_marker(needs_no_gpu)
