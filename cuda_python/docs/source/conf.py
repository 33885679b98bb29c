"""Sphinx configuration for cuda-python: its version comes from ``SPHINX_CUDA_PYTHON_VER``."""

import os

project = "cuda-python"
author = "cuda-ci maintainers"
release = os.environ["SPHINX_CUDA_PYTHON_VER"]
version = release
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx_copybutton"]
exclude_patterns: list[str] = []
html_theme = "alabaster"
autodoc_member_order = "bysource"
