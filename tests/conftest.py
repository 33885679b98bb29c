from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import clone, make_monorepo


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_monorepo(tmp_path_factory.mktemp("template") / "repo")


@pytest.fixture
def monorepo(template_repo: Path, tmp_path: Path) -> Path:
    """A full clone of the template: main, no tags; each test may tag and commit freely."""
    return clone(template_repo, tmp_path / "repo")
