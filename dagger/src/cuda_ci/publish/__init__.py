"""Stage 5, publish: the GitHub release, TestPyPI, PyPI and un-draft, each resumable; verify and status."""
