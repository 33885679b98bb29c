"""The C extension is declared here; everything else lives in pyproject.toml."""

import sys

from setuptools import Extension, setup

libraries = [] if sys.platform == "win32" else ["dl"]

setup(
    ext_modules=[
        Extension(
            "cuda.bindings._driver",
            sources=["cuda/bindings/_driver.c"],
            libraries=libraries,
        )
    ]
)
