"""Component code as an attacker writes it: a ``setup.py`` that hunts for the release's credentials
in every ancestor's environment block, and one that poisons the kept build environment it runs in."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cuda_ci.cli.app import main
from cuda_ci.infra import toolenvs
from cuda_ci.infra.envcontent import content_problem
from cuda_ci.infra.manifest import sha256_of
from tests.e2e.test_faults_and_secrets import TOKENS
from tests.helpers import git

pytestmark = pytest.mark.e2e
TAG = "cuda-pathfinder-v1.0.0"
SECRETS = {
    **TOKENS,
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "AncestorHuntOidcRequestToken",
    "ACTIONS_ID_TOKEN_REQUEST_URL": "https://pipelines.example.invalid/AncestorHuntOidcUrl",
}

# Runs inside the build backend: walks from its parent to pid 1, reading each environment block.
HUNTING_SETUP_PY = """
import json, os
from setuptools import setup

def parent_of(pid):
    with open(f"/proc/{pid}/stat") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[1])

with open(os.environ["HUNT_FOR"]) as handle:  # a file: a variable holding them would not get here
    secrets = json.load(handle)
chain, pid = [], os.getppid()
while pid > 1:
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        cmdline = handle.read().replace(b"\\0", b" ").decode(errors="replace")
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            block = handle.read().decode(errors="replace")
    except OSError as error:
        environ = f"unreadable: {type(error).__name__}"
    else:
        environ = [name for name, value in secrets.items() if value in block]
    chain.append({"pid": pid, "cmdline": cmdline, "environ": environ})
    pid = parent_of(pid)
own = [name for name, value in secrets.items() if any(value in v for v in os.environ.values())]
with open(os.environ["HUNT_REPORT"], "a") as report:
    report.write(json.dumps({"own": own, "handoff": "CUDA_CI_SECRETS_FD" in os.environ, "chain": chain}) + "\\n")
setup()
"""


def _commit_setup_py(repo: Path, text: str, message: str) -> None:
    (repo / "cuda_pathfinder" / "setup.py").write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_no_child_finds_a_credential_in_any_ancestor_s_environment(monorepo: Path, tmp_path: Path) -> None:
    _commit_setup_py(monorepo, HUNTING_SETUP_PY, "a setup.py that hunts for credentials")
    report, hunted = tmp_path / "hunt.jsonl", tmp_path / "hunted.json"
    hunted.write_text(json.dumps(SECRETS))
    environ = {k: v for k, v in os.environ.items() if k not in SECRETS}
    environ |= {**SECRETS, "HUNT_FOR": str(hunted), "HUNT_REPORT": str(report)}
    cuda_ci = Path(sys.executable).parent / "cuda-ci"  # the console script: a process of its own
    argv = [str(cuda_ci), "build", "--snapshot", "--component", "cuda-pathfinder", "--repo", str(monorepo)]
    done = subprocess.run(
        [*argv, "--out", str(tmp_path / "out")], env=environ, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr
    hunts = [json.loads(line) for line in report.read_text().splitlines()]
    assert hunts, "the build backend ran setup.py"
    for hunt in hunts:
        assert hunt["own"] == [] and hunt["handoff"] is False
        found = [(link["cmdline"], link["environ"]) for link in hunt["chain"] if isinstance(link["environ"], list)]
        assert [(cmdline, names) for cmdline, names in found if names] == []
        [ours] = [link for link in hunt["chain"] if "cuda-ci build --snapshot" in link["cmdline"]]
        assert ours["environ"] == [] or ours["environ"].startswith("unreadable"), ours
        [test] = [link for link in hunt["chain"] if link["pid"] == os.getpid()]
        assert test["environ"] == [], "an ancestor's block is read where it can be: this test's own"
    assert not any(value in done.stdout + done.stderr for value in SECRETS.values())


# Runs inside the build backend, i.e. inside the kept build environment: a .pth file there runs in
# every later process of that environment.
POISONING_SETUP_PY = """
import os, sysconfig
from setuptools import setup

with open(os.path.join(sysconfig.get_paths()["purelib"], "zz-poison.pth"), "w") as pth:
    pth.write("import os, sys; open(os.environ['POISON_RAN'], 'a').write(sys.prefix + '\\\\n')\\n")
setup()
"""


def _build_env(cache: Path, namespace: str) -> Path:
    [env] = (cache / namespace / "envs").glob("build-*")
    return env


def test_a_snapshot_cannot_poison_what_a_release_builds_with(
    monorepo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cache, ran = tmp_path / "cache", tmp_path / "poison-ran.txt"
    monkeypatch.setenv("CUDA_CI_CACHE_DIR", str(cache))  # never the session's environments
    monkeypatch.setenv("POISON_RAN", str(ran))
    monkeypatch.setattr(toolenvs, "_FOUND", {})
    git(monorepo, "tag", TAG)
    git(monorepo, "checkout", "-q", "-b", "unreviewed")
    _commit_setup_py(monorepo, POISONING_SETUP_PY, "an unreviewed setup.py")
    snapshot = ["build", "--snapshot", "--component", "cuda-pathfinder", "--repo", str(monorepo)]
    assert main([*snapshot, "--out", str(tmp_path / "snapshot")]) == 0
    untrusted = _build_env(cache, "untrusted")
    assert "zz-poison.pth was added" in (content_problem(untrusted) or ""), "the snapshot did poison its own"

    git(monorepo, "checkout", "-q", "main")
    release = ["build", "--tag", TAG, "--repo", str(monorepo)]
    assert main([*release, "--out", str(tmp_path / "clean")]) == 0
    trusted = _build_env(cache, "release")
    assert trusted != untrusted and content_problem(trusted) is None
    assert str(trusted) not in (ran.read_text() if ran.exists() else ""), "the poison never ran in a release"

    # Whatever still reaches the release's environment (same user, another way) is found before use.
    site = next(trusted.glob("lib/python*/site-packages"))
    shutil.copy(next(untrusted.glob("lib/python*/site-packages/zz-poison.pth")), site)
    monkeypatch.setattr(toolenvs, "_FOUND", {})  # a later run
    capsys.readouterr()
    assert main([*release, "--out", str(tmp_path / "again")]) == 0
    err = capsys.readouterr().err
    assert f"warning: the kept tool environment {trusted.name} is not as it was made (" in err
    assert "zz-poison.pth was added): never used, set aside as " in err
    assert str(trusted) not in (ran.read_text() if ran.exists() else "")
    assert content_problem(trusted) is None and not list(trusted.rglob("zz-poison.pth")), "made again, clean"
    wheels = [next((tmp_path / run / "dist").glob("*.whl")) for run in ("clean", "again")]
    assert sha256_of(wheels[0]) == sha256_of(wheels[1]), "the shipped wheel is what a clean environment builds"
