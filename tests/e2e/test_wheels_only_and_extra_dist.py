"""--wheels-only builds this platform's wheels only; --extra-dist wheels join and are checked statically."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from cuda_ci.build.identifiers import host_identifier
from cuda_ci.build.wheel_jobs import selected_identifiers
from cuda_ci.cli.app import main
from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.manifest import ReleaseFolder
from cuda_ci.validate import install
from cuda_ci.validate.checks import import_test_wheels
from tests.helpers import REPO_ROOT, git

pytestmark = pytest.mark.e2e
# cibuildwheel's Windows selection of cuda-bindings (cp310 ... cp315t), as it reads it.
WINDOWS = [i.split("-")[0] for i in selected_identifiers(REPO_ROOT / "cuda_bindings", "windows")]


def retag_as_windows(wheel: Path, python: str, dest: Path) -> Path:
    """A copy of a Linux wheel tagged as cibuildwheel's Windows build of ``python``, RECORD kept true."""
    name, version = wheel.name.split("-")[:2]
    tag = f"{python.removesuffix('t')}-{python}-win_amd64"  # free-threaded: cp314-cp314t
    target = dest / f"{name}-{version}-{tag}.whl"
    members: dict[str, bytes] = {}
    with zipfile.ZipFile(wheel) as source:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename.endswith(".dist-info/WHEEL"):
                lines = [line for line in data.decode().splitlines() if not line.startswith("Tag:")]
                data = ("\n".join([*lines, f"Tag: {tag}"]) + "\n").encode()
            members[info.filename] = data
    record = next(n for n in members if n.endswith(".dist-info/RECORD"))
    rows = []
    for member, data in members.items():
        if member == record or member.endswith("/"):
            continue
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{member},sha256={digest},{len(data)}")
    members[record] = ("\n".join([*rows, f"{record},,"]) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as result:
        for member, data in members.items():
            result.writestr(member, data)
    target.write_bytes(buffer.getvalue())
    return target


@pytest.fixture
def wheels_only(tagged_repo: Path, tmp_path: Path) -> Path:
    out = tmp_path / "linux-wheels"
    assert main(["build", "--tag", "v13.0.0", "--wheels-only", "--repo", str(tagged_repo), "--out", str(out)]) == 0
    return out


def test_wheels_only_builds_only_the_platform_wheel(
    wheels_only: Path, tagged_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = sorted(p.name for p in (wheels_only / "dist").iterdir())
    assert len(names) == 1 and names[0].startswith("cuda_bindings-13.0.0-cp3") and "manylinux" in names[0]
    assert not (wheels_only / "assets").exists(), "no source archive, no sdist, no metapackage"
    assert (
        main(
            [
                "build",
                "--tag",
                "cuda-pathfinder-v1.0.0",
                "--wheels-only",
                "--repo",
                str(tagged_repo),
                "--out",
                str(wheels_only / "x"),
            ]
        )
        == 2
    )
    assert "cuda-pathfinder has no platform wheels" in capsys.readouterr().err


def test_extra_dist_windows_wheels_join_the_release(
    wheels_only: Path,
    tagged_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    linux_wheel = next((wheels_only / "dist").iterdir())
    extra = tmp_path / "windows"
    extra.mkdir()
    retag_as_windows(linux_wheel, "cp311", extra)
    out = tmp_path / "rel"
    assert (
        main(
            [
                "release",
                "--tag",
                "v13.0.0",
                "--dry-run",
                "--no-publish",
                "--repo",
                str(tagged_repo),
                "--out",
                str(out),
                "--extra-dist",
                str(extra),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert {"cp315", "cp315t"} <= set(WINDOWS)
    for python in (p for p in WINDOWS if p != "cp311"):
        assert f"cuda-bindings: 0 wheels for {python}-win_amd64, expected exactly 1" in err

    for python in WINDOWS:
        retag_as_windows(linux_wheel, python, extra)
    out2 = tmp_path / "rel2"
    code = main(
        [
            "release",
            "--tag",
            "v13.0.0",
            "--dry-run",
            "--no-publish",
            "--repo",
            str(tagged_repo),
            "--out",
            str(out2),
            "--extra-dist",
            str(extra),
        ]
    )
    assert code == 0, capsys.readouterr().err
    manifest = json.loads((out2 / "release-manifest.json").read_text())
    listed = {f["name"] for f in manifest["files"]}
    assert {p.name for p in extra.iterdir()} <= listed
    skipped = [v for v in manifest["validation"] if v["status"] == "skipped" and v["check"] == "install"]
    assert len(skipped) == len(WINDOWS) and all("win_amd64" in (v["file"] or "") for v in skipped)
    sums = (out2 / "SHA256SUMS").read_text().splitlines()
    assert len([line for line in sums if line.endswith("win_amd64.whl")]) == len(WINDOWS)
    # and an SBOM per extra wheel
    assert len([line for line in sums if line.endswith("win_amd64.whl.cdx.json")]) == len(WINDOWS)
    shutil.rmtree(extra)


def wheel_node(repo: Path, out: Path, *selection: str) -> list[str]:
    """A Dagger plan's wheel node's command line (cuda_ci.plan.release), run on the host with its interpreter."""
    return [
        *("build", *selection, "--wheels-only", f"--build-python={sys.executable}"),
        *("--repo", str(repo), "--out", str(out), f"--node=wheel:{host_identifier()}"),
    ]


def test_a_wheel_node_import_tests_its_wheel_with_this_commits_siblings(
    tagged_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cuda-core's wheel, installed with the cuda-bindings and cuda-pathfinder this commit builds for the
    same interpreter, then imported: what its wheel job checks on its own runner before any job takes it."""
    out = tmp_path / "wheel-node"
    assert main([*wheel_node(tagged_repo, out, "--tag", "cuda-core-v0.3.0"), "--json"]) == 0
    assert [p.name.split("-")[0] for p in sorted((out / "dist").iterdir())] == ["cuda_core"]
    siblings = sorted(p.name.split("-")[0] for p in (out / "siblings").glob("*.whl"))
    assert siblings == ["cuda_bindings", "cuda_pathfinder"], "built once, for the build and for the import test"
    log = json.loads((out / "run-log.json").read_text())
    assert {"build", "smoke"} <= set(log["stages"]), log["stages"]
    # an interpreter the job's wheel is not for (cibuildwheel's identifier and --build-python disagree)
    monkeypatch.setattr(install, "installable_here", lambda name: False)
    monkeypatch.setattr(install, "interpreter_of", lambda python: ("cp39", "linux-x86_64"))
    with pytest.raises(CudaCiError) as refused:
        import_test_wheels(ReleaseFolder.existing(out), tagged_repo, sys.executable, Reporter())
    assert f"{sys.executable} could install none of this job's wheels (cuda_core-0.3.0-" in str(refused.value)
    assert "none was import-tested" in str(refused.value)


def test_a_wheel_node_whose_wheel_does_not_import_fails_naming_it(
    tagged_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init = tagged_repo / "cuda_bindings" / "cuda" / "bindings" / "__init__.py"
    init.write_text(init.read_text() + "\nraise ImportError('cuda.bindings: broken on purpose')\n")
    git(tagged_repo, "commit", "-q", "-am", "a module that cannot be imported")
    out = tmp_path / "wheel-node"
    assert main(wheel_node(tagged_repo, out, "--snapshot", "--component", "cuda-bindings")) == 1
    message = capsys.readouterr().err
    assert "import: cuda-bindings" in message and "broken on purpose" in message, message
    assert f"import test of cuda-bindings's wheels with {sys.executable}" in message, message
