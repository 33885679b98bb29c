"""Shared infrastructure below the stages: components, git, GitHub, indexes, environments,
processes, settings, the manifest."""
