"""The Cython extension comes from the build backend (build_hooks.py), which makes it for wheels only."""

import build_hooks
from setuptools import setup

setup(ext_modules=build_hooks.extensions)
