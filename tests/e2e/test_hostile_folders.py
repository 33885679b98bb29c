"""A release folder altered by whoever can touch the artifact: nothing outside it is read, hashed or published."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cuda_ci.cli import main
from cuda_ci.manifest import ReleaseFolder, sha256_of
from tests.helpers import clone, git

pytestmark = pytest.mark.e2e
TAG = "cuda-pathfinder-v1.0.0"
SECRET = b"root:x:0:0:the runner's secrets, outside the release folder\n"


@pytest.fixture(scope="module")
def validated(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real, validated cuda-pathfinder 1.0.0 release folder (docs not needed: publish refuses first)."""
    root = tmp_path_factory.mktemp("hostile")
    repo = clone(template_repo, root / "repo")
    git(repo, "tag", TAG)
    out = root / "release"
    assert main(["build", "--tag", TAG, "--repo", str(repo), "--out", str(out)]) == 0
    assert main(["validate", "--release-dir", str(out), "--repo", str(repo)]) == 0
    return out


@pytest.fixture
def folder(validated: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "release"
    shutil.copytree(validated, copy)
    return copy


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_bytes(SECRET)
    return path


def _point_wheel_at(folder: Path, path_text: str, sha256: str) -> None:
    """Edit the manifest by hand (as an attacker would, not through the schema-checked save),
    keeping SHA256SUMS consistent so that only the path is wrong."""
    manifest = json.loads((folder / "release-manifest.json").read_text())
    entry = next(f for f in manifest["files"] if f["kind"] == "wheel")
    entry.update(path=path_text, sha256=sha256, size=len(SECRET))
    (folder / "release-manifest.json").write_text(json.dumps(manifest))
    sums = "".join(f"{f['sha256']}  {f['name']}\n" for f in sorted(manifest["files"], key=lambda f: f["name"]))
    (folder / "SHA256SUMS").write_text(sums)


def _nothing_published(folder: Path, err: str) -> None:
    assert "Traceback" not in err and "internal error" not in err
    assert not (folder / "index").exists() and not (folder / "github-release").exists()


@pytest.mark.parametrize("kind", ["relative", "through-dist", "absolute"])
@pytest.mark.parametrize("hash_matches", [True, False])
def test_manifest_paths_outside_the_folder_are_never_read(
    folder: Path, secret: Path, kind: str, hash_matches: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    path_text = {"relative": "../secret.txt", "through-dist": "dist/../../secret.txt", "absolute": str(secret)}[kind]
    secret_sha = sha256_of(secret)
    _point_wheel_at(folder, path_text, secret_sha if hash_matches else "0" * 64)
    assert main(["publish", "--release-dir", str(folder), "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert "release-manifest.json: release manifest: files/0/path: " in err and "must match pattern" in err, err
    assert secret_sha not in err or hash_matches, "the outside file's hash is never printed"
    _nothing_published(folder, err)
    for command in (["verify", "--release-dir", str(folder)], ["validate", "--release-dir", str(folder)]):
        assert main(command) == 1
        out, err = capsys.readouterr()
        assert "files/" in err and "path" in err, err
        if not hash_matches:
            assert secret_sha not in out + err


def test_a_listed_file_that_is_a_link_to_outside_is_refused(
    folder: Path, secret: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hash matches (the manifest says what the outside file holds); the link itself is refused."""
    wheel = next((folder / "dist").glob("*.whl"))
    wheel.unlink()
    wheel.symlink_to(secret)
    _point_wheel_at(folder, f"dist/{wheel.name}", sha256_of(secret))
    assert main(["publish", "--release-dir", str(folder), "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert f"dist/{wheel.name} is a symbolic link: a release folder holds only plain files" in err
    _nothing_published(folder, err)
    assert main(["verify", "--release-dir", str(folder)]) == 1
    assert f"dist/{wheel.name} is a symbolic link" in capsys.readouterr().err


def test_a_linked_dist_folder_and_unlisted_entries_are_refused(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "assets" / "nested").mkdir()
    (folder / "assets" / "nested" / "extra.whl").write_bytes(b"x")
    (folder / "assets" / "fifo").symlink_to("/dev/null")
    assert main(["publish", "--release-dir", str(folder), "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert "assets/nested (a folder) is not in release-manifest.json" in err
    assert "assets/fifo is not in release-manifest.json" in err
    _nothing_published(folder, err)
    shutil.rmtree(folder / "assets" / "nested")
    (folder / "assets" / "fifo").unlink()
    elsewhere = tmp_path / "elsewhere"
    (folder / "dist").rename(elsewhere)
    (folder / "dist").symlink_to(elsewhere)
    assert main(["publish", "--release-dir", str(folder), "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert "dist/ is a symbolic link" in err
    _nothing_published(folder, err)


def test_attestations_must_be_paired_plain_files(
    folder: Path, secret: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    attestations = folder / "attestations"
    attestations.mkdir()
    wheel = next((folder / "dist").glob("*.whl"))
    (attestations / f"{wheel.name}.publish.attestation").symlink_to(secret)
    (attestations / "cuda_core-9.9.9.tar.gz.publish.attestation").write_text("{}")
    (attestations / "shadow.attestation").symlink_to(secret)
    assert main(["publish", "--release-dir", str(folder), "--dry-run", "--target", "github"]) == 1
    err = capsys.readouterr().err
    assert f"attestations/{wheel.name}.publish.attestation is a symbolic link" in err
    assert "attestations/cuda_core-9.9.9.tar.gz.publish.attestation attests no file of this release" in err
    assert "attestations/shadow.attestation attests no file of this release" in err
    _nothing_published(folder, err)
    assert main(["verify", "--release-dir", str(folder)]) == 1
    out, err = capsys.readouterr()
    assert f"attestations/{wheel.name}.publish.attestation is a symbolic link" in err
    assert "no attestations present" not in out
    assert ReleaseFolder(folder).load()["files"], "the manifest itself was left alone"
