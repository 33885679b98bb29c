"""Sphinx configuration for cuda-bindings: its version comes from ``SPHINX_CUDA_BINDINGS_VER``."""

import os

project = "cuda-bindings"
author = "cuda-ci maintainers"
release = os.environ["SPHINX_CUDA_BINDINGS_VER"]
version = release
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx_copybutton"]
exclude_patterns: list[str] = []
html_theme = "alabaster"
autodoc_member_order = "bysource"
