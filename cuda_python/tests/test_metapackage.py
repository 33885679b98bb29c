from __future__ import annotations

from importlib.metadata import requires, version


def test_pins_the_bindings_release_of_its_own_version() -> None:
    assert requires("cuda-python") == [f"cuda-bindings=={version('cuda-python')}"]
    assert version("cuda-bindings") == version("cuda-python")


def test_bindings_are_importable_through_the_metapackage() -> None:
    from cuda.bindings import driver

    assert callable(driver.cuDriverGetVersion)
