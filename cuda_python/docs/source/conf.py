"""Sphinx configuration for cuda-python; the version comes from the installed distribution."""

from importlib.metadata import version as _version

project = "cuda-python"
author = "cuda-ci maintainers"
release = _version("cuda-python")
version = release
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon"]
exclude_patterns: list[str] = []
html_theme = "alabaster"
autodoc_member_order = "bysource"
