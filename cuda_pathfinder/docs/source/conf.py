"""Sphinx configuration for cuda-pathfinder: its version comes from ``SPHINX_CUDA_PATHFINDER_VER``."""

import os

project = "cuda-pathfinder"
author = "cuda-ci maintainers"
release = os.environ["SPHINX_CUDA_PATHFINDER_VER"]
version = release
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx_copybutton"]
exclude_patterns: list[str] = []
html_theme = "alabaster"
autodoc_member_order = "bysource"
