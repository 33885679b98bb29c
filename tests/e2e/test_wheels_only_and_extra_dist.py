"""--wheels-only builds this platform's wheels only; --extra-dist wheels join and are checked statically."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from cuda_ci.build.wheel_jobs import selected_identifiers
from cuda_ci.cli.app import main
from tests.helpers import REPO_ROOT

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
