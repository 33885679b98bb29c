"""Sphinx configuration for cuda-core: its version comes from ``SPHINX_CUDA_CORE_VER``."""

import os

project = "cuda-core"
author = "cuda-ci maintainers"
release = os.environ["SPHINX_CUDA_CORE_VER"]
version = release
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx_copybutton"]
exclude_patterns: list[str] = []
html_theme = "alabaster"
autodoc_member_order = "bysource"
