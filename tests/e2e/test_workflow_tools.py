"""The workflows against GitHub's schema (check-jsonschema's vendored copy) and zizmor, offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.e2e
WORKFLOWS = sorted(str(p) for p in (REPO_ROOT / ".github" / "workflows").glob("*.yml"))


def test_workflows_match_the_github_workflow_schema() -> None:
    argv = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *WORKFLOWS]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_at_medium_or_above() -> None:
    zizmor = Path(sys.executable).parent / "zizmor"
    argv = [str(zizmor), "--offline", "--min-severity", "medium", str(REPO_ROOT / ".github" / "workflows")]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout + result.stderr


def test_zizmor_would_catch_an_injection(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: workflow_dispatch\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.event.issue.title }}\n"
    )
    zizmor = Path(sys.executable).parent / "zizmor"
    result = subprocess.run(
        [str(zizmor), "--offline", "--min-severity", "medium", str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0 and "template-injection" in result.stdout + result.stderr
