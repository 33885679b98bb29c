"""The workflows against GitHub's schema (check-jsonschema's vendored copy) and zizmor, offline."""

from __future__ import annotations

import base64
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


def test_deploy_docs_never_puts_the_token_in_a_url_or_an_argument(tmp_path: Path) -> None:
    """The script with a recording ``git`` first on PATH: every argv and the header git would send."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    recorder = bin_dir / "git"
    recorder.write_text(
        "#!/usr/bin/env bash\n"
        f'printf "%s\\n" "$*" >> {calls}\n'
        f'printf "header %s\\n" "$GIT_CONFIG_KEY_0=$GIT_CONFIG_VALUE_0" >> {calls}\n'
        '[ "$1" = ls-remote ] && exit 2\n'  # no gh-pages yet
        "exit 0\n"
    )
    recorder.chmod(0o755)
    release = tmp_path / "release"
    (release / "docs" / "cuda-pathfinder").mkdir(parents=True)
    (release / "docs" / "cuda-pathfinder" / "index.html").write_text("<html></html>")
    (release / "release-manifest.json").write_text('{"version": "1.0.0"}')
    token = "ghs_deploy_token_value"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "GH_TOKEN": token, "REPOSITORY": "NVIDIA/cuda-python"}
    script = REPO_ROOT / ".github" / "scripts" / "deploy-docs.sh"
    result = subprocess.run(["bash", str(script), str(release)], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    recorded = calls.read_text().splitlines()
    argv = [line for line in recorded if not line.startswith("header ")]
    assert argv[0] == "ls-remote --exit-code https://github.com/NVIDIA/cuda-python.git gh-pages"
    assert any(line.endswith("push --quiet https://github.com/NVIDIA/cuda-python.git HEAD:gh-pages") for line in argv)
    assert not [line for line in argv if token in line or basic in line], "no token in any argument or URL"
    assert f"header http.https://github.com/.extraheader=AUTHORIZATION: basic {basic}" in recorded
    assert result.stdout.splitlines()[0] == f"::add-mask::{basic}" and token not in result.stdout + result.stderr
    assert "docs 1.0.0 deployed" in result.stdout
