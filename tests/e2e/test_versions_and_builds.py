"""Versions come from each component's own tags; builds run for real in a throwaway clone."""

from __future__ import annotations

import json
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest
from packaging.utils import parse_sdist_filename, parse_wheel_filename

from cuda_ci.cli.app import main
from tests.helpers import clone, commit_change, git

pytestmark = pytest.mark.e2e


def version_of(repo: Path, distribution: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["component-version", "--component", distribution, "--repo", str(repo)]) == 0
    return capsys.readouterr().out.strip()


def built_versions(folder: Path) -> dict[str, set[str]]:
    versions: dict[str, set[str]] = {}
    for path in (folder / "dist").iterdir():
        if path.name.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(path.name)
        else:
            name, version = parse_sdist_filename(path.name)
        versions.setdefault(str(name), set()).add(str(version))
    return versions


def wheel_metadata(wheel: Path) -> HeaderParser:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return HeaderParser().parsestr(archive.read(name).decode())  # type: ignore[return-value]


def test_each_component_versions_from_its_own_tags(monorepo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    git(monorepo, "tag", "cuda-core-v0.3.0")
    assert version_of(monorepo, "cuda-core", capsys) == "0.3.0"
    pathfinder = version_of(monorepo, "cuda-pathfinder", capsys)
    assert ".dev" in pathfinder, "a cuda-core tag must never change cuda-pathfinder's version"
    commit_change(monorepo)
    after = version_of(monorepo, "cuda-core", capsys)
    assert after.startswith("0.3.1.dev1+g"), after


def test_core_tag_builds_its_version(monorepo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    git(monorepo, "tag", "cuda-core-v0.3.0")
    commit_change(monorepo, "after the tag")  # HEAD moves on; the build must use the tag
    out = tmp_path / "out"
    assert main(["build", "--tag", "cuda-core-v0.3.0", "--repo", str(monorepo), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "cuda_core-0.3.0-cp3" in printed and "sha256" in printed
    assert built_versions(out) == {"cuda-core": {"0.3.0"}}
    manifest = json.loads((out / "release-manifest.json").read_text())
    assert manifest["commit"] == git(monorepo, "rev-parse", "cuda-core-v0.3.0^{commit}")
    assert manifest["version"] == "0.3.0" and manifest["tag"] == "cuda-core-v0.3.0"
    assert {f["kind"] for f in manifest["files"]} == {"sdist", "wheel", "source-archive", "sbom"}


def test_annotated_v_tag_builds_bindings_and_pinned_metapackage(monorepo: Path, tmp_path: Path) -> None:
    git(monorepo, "tag", "-a", "v13.0.1", "-m", "cuda-bindings 13.0.1")
    out = tmp_path / "out"
    assert main(["build", "--tag", "v13.0.1", "--repo", str(monorepo), "--out", str(out)]) == 0
    assert built_versions(out) == {"cuda-bindings": {"13.0.1"}, "cuda-python": {"13.0.1"}}
    meta = wheel_metadata(next((out / "dist").glob("cuda_python-*.whl")))
    assert meta.get_all("Requires-Dist") == ["cuda-bindings==13.0.1"]  # type: ignore[attr-defined]
    bindings = next((out / "dist").glob("cuda_bindings-*.whl"))
    assert "manylinux" in bindings.name, "platform wheels are repaired by auditwheel"
    manifest = json.loads((out / "release-manifest.json").read_text())
    listed = {f["name"]: f["sha256"] for f in manifest["files"]}
    from cuda_ci.infra.manifest import sha256_of

    assert listed[bindings.name] == sha256_of(bindings), "the hash is of the repaired wheel"
    sums = (out / "SHA256SUMS").read_text().splitlines()
    assert f"{listed[bindings.name]}  {bindings.name}" in sums


def test_snapshot_without_tags_builds_a_dev_version_with_a_warning(
    monorepo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (monorepo / "cuda_pathfinder" / "README.md").write_text("uncommitted edit\n")
    out = tmp_path / "snap"
    assert (
        main(["build", "--snapshot", "--component", "cuda-pathfinder", "--repo", str(monorepo), "--out", str(out)]) == 0
    )
    captured = capsys.readouterr()
    assert "uncommitted change(s)" in captured.err
    assert "no cuda-pathfinder-v* tag is reachable" in captured.err
    (version,) = built_versions(out)["cuda-pathfinder"]
    assert version.startswith("0.1.dev1+g")
    with zipfile.ZipFile(next((out / "dist").glob("*.whl"))) as wheel:
        assert not any("README" in n for n in wheel.namelist())
    assert json.loads((out / "release-manifest.json").read_text())["snapshot"] is True


def test_shallow_clone_is_refused(monorepo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    commit_change(monorepo)
    shallow = clone(monorepo, tmp_path / "shallow", "--depth", "1")
    code = main(
        ["build", "--snapshot", "--component", "cuda-pathfinder", "--repo", str(shallow), "--out", str(tmp_path / "o")]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "is a shallow clone" in err and "fetch-depth: 0" in err
    assert not (tmp_path / "o").exists()
    assert main(["component-version", "--component", "cuda-core", "--repo", str(shallow)]) == 1
    assert "shallow clone" in capsys.readouterr().err
