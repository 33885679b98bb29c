"""A release folder altered by whoever can touch the artifact: nothing outside it is read, hashed or published."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import stat
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest

from cuda_ci.build.sibling_record import write_record
from cuda_ci.build.siblings import sibling_wheels
from cuda_ci.cli.app import main
from cuda_ci.infra.components import get_unit
from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.manifest import ReleaseFolder, file_entry, sha256_of
from tests.fakes.github import FakeGitHub
from tests.helpers import folder_from, git, tagged_clone

pytestmark = pytest.mark.e2e
TAG = "cuda-pathfinder-v1.0.0"
SECRET = b"root:x:0:0:the runner's secrets, outside the release folder\n"


@pytest.fixture(scope="module")
def built(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One real build of cuda-pathfinder 1.0.0, not validated yet, and its repository."""
    root = tmp_path_factory.mktemp("hostile")
    repo = tagged_clone(template_repo, root, TAG)
    return folder_from(repo, root, "build", "--tag", TAG), repo


@pytest.fixture(scope="module")
def validated(built: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same folder validated (docs not needed: publish refuses first)."""
    out = tmp_path_factory.mktemp("hostile-validated") / "release"
    shutil.copytree(built[0], out)
    assert main(["validate", "--release-dir", str(out), "--repo", str(built[1])]) == 0
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


def test_a_linked_manifest_sums_or_docs_folder_is_refused(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("release-manifest.json", "SHA256SUMS"):
        moved = tmp_path / f"moved-{name}"
        (folder / name).rename(moved)
        (folder / name).symlink_to(moved)
    assert main(["publish", "--release-dir", str(folder), "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert "release-manifest.json is a symbolic link: a release folder holds only plain files" in err
    _nothing_published(folder, err)
    (folder / "release-manifest.json").unlink()
    (tmp_path / "moved-release-manifest.json").rename(folder / "release-manifest.json")
    assert main(["publish", "--release-dir", str(folder), "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert "SHA256SUMS is a symbolic link: a release folder holds only plain files" in err
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


# --- hostile archives: validate refuses them before anything opens them further ---------------


@pytest.fixture
def unvalidated(built: tuple[Path, Path], tmp_path: Path) -> Path:
    copy = tmp_path / "release"
    shutil.copytree(built[0], copy)
    return copy


def _relist(folder: Path, path: Path) -> None:
    """The manifest and SHA256SUMS follow the changed file (without ``built_from``, so the old
    code builds a wheel from a changed sdist and passes): only the archive check may refuse."""
    release = ReleaseFolder(folder)
    manifest = release.load()
    for i, entry in enumerate(manifest["files"]):
        if entry["name"] == path.name:
            manifest["files"][i] = file_entry(folder, path, entry["kind"], entry["distribution"])
    release.save(manifest)


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}\n"


def _add_to_wheel(wheel: Path, info: zipfile.ZipInfo, data: bytes) -> None:
    """Add a member, listed in RECORD with its true hash (so RECORD alone never refuses it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as result:
        for old in source.infolist():
            content = source.read(old)
            if old.filename.endswith(".dist-info/RECORD"):
                content += _record_line(info.filename, data).encode()
            result.writestr(old, content)
        result.writestr(info, data)
    wheel.write_bytes(buffer.getvalue())


def _validate_refuses(folder: Path, repo: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["validate", "--release-dir", str(folder), "--repo", str(repo)]) == 1
    err = capsys.readouterr().err
    assert "nothing was published" in err and "Traceback" not in err and "internal error" not in err
    return err


def test_a_wheel_with_a_link_member_is_refused(
    unvalidated: Path, built: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = next((unvalidated / "dist").glob("*.whl"))
    link = zipfile.ZipInfo("cuda/pathfinder/passwd")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    _add_to_wheel(wheel, link, b"/etc/passwd")
    fifo = zipfile.ZipInfo("cuda/pathfinder/pipe")
    fifo.create_system = 3
    fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
    _add_to_wheel(wheel, fifo, b"")
    _relist(unvalidated, wheel)
    err = _validate_refuses(unvalidated, built[1], capsys)
    assert f"archive: {wheel.name}: cuda/pathfinder/passwd is a symbolic link; a wheel holds only files" in err
    assert f"archive: {wheel.name}: cuda/pathfinder/pipe is a special file (device, pipe or socket)" in err


def test_a_wheel_that_inflates_far_beyond_its_size_is_refused(
    unvalidated: Path, built: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = next((unvalidated / "dist").glob("*.whl"))
    zeros = zipfile.ZipInfo("cuda/pathfinder/zeros.bin")
    zeros.compress_type = zipfile.ZIP_DEFLATED
    _add_to_wheel(wheel, zeros, bytes(8 * 1024 * 1024))
    _relist(unvalidated, wheel)
    err = _validate_refuses(unvalidated, built[1], capsys)
    assert f"archive: {wheel.name}: cuda/pathfinder/zeros.bin inflates " in err
    assert "times, over the limit of 200" in err


def _declare_size(wheel: Path, member: str, size: int) -> None:
    """Rewrite the central directory's uncompressed size of ``member``: a header that lies."""
    data = bytearray(wheel.read_bytes())
    at = data.rindex(member.encode()) - 46
    assert data[at : at + 4] == b"PK\x01\x02"
    struct.pack_into("<I", data, at + 24, size)
    wheel.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        (1024 * 1024 * 1024, "cuda/pathfinder/__init__.py inflates to 1024 MiB, over the 256 MiB limit"),
        (3, "cuda/pathfinder/__init__.py does not match its header (size or CRC)"),
    ],
    ids=["declares-1-GiB", "declares-less-than-it-holds"],
)
def test_a_wheel_whose_header_lies_about_a_size_is_refused(
    unvalidated: Path, built: tuple[Path, Path], declared: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = next((unvalidated / "dist").glob("*.whl"))
    _declare_size(wheel, "cuda/pathfinder/__init__.py", declared)
    _relist(unvalidated, wheel)
    assert f"archive: {wheel.name}: {message}" in _validate_refuses(unvalidated, built[1], capsys)


def _add_to_sdist(sdist: Path, info: tarfile.TarInfo, data: bytes | None) -> None:
    buffer = io.BytesIO()
    with tarfile.open(sdist, "r:gz") as source, tarfile.open(fileobj=buffer, mode="w:gz") as result:
        for member in source.getmembers():
            result.addfile(member, source.extractfile(member) if member.isfile() else None)
        top = source.getmembers()[0].name.split("/")[0]
        info.name = f"{top}/{info.name}"
        result.addfile(info, io.BytesIO(data) if data is not None else None)
    sdist.write_bytes(buffer.getvalue())


def test_an_sdist_with_links_or_a_bomb_is_refused(
    unvalidated: Path, built: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sdist = next((unvalidated / "dist").glob("*.tar.gz"))
    original = sdist.read_bytes()
    link = tarfile.TarInfo("passwd")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    _add_to_sdist(sdist, link, None)
    _relist(unvalidated, sdist)
    err = _validate_refuses(unvalidated, built[1], capsys)
    assert f"archive: {sdist.name}: cuda_pathfinder-1.0.0/passwd is a link; an sdist holds only files" in err

    sdist.write_bytes(original)
    zeros = tarfile.TarInfo("zeros.bin")
    zeros.size = 32 * 1024 * 1024
    _add_to_sdist(sdist, zeros, bytes(zeros.size))
    _relist(unvalidated, sdist)
    err = _validate_refuses(unvalidated, built[1], capsys)
    assert f"archive: {sdist.name} inflates " in err and "times, over the limit of 200" in err


def test_validate_refuses_anything_in_dist_that_is_not_a_listed_plain_file(
    unvalidated: Path, built: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    (unvalidated / "dist" / "more").mkdir()
    wheel = next((unvalidated / "dist").glob("*.whl"))
    shutil.copy2(wheel, unvalidated / "dist" / "more" / wheel.name)
    (unvalidated / "assets" / "link.json").symlink_to(unvalidated / "release-manifest.json")
    err = _validate_refuses(unvalidated, built[1], capsys)
    assert "manifest: dist/more (a folder) is not in release-manifest.json" in err
    assert "manifest: assets/link.json is not in release-manifest.json" in err


# --- --out: nothing of the user's is written into, nothing of an earlier run's record is lost ----


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("command", ["build", "release"])
def test_a_non_empty_out_is_refused_before_anything_is_written(
    tagged_repo: Path, tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mine"
    (out / "docs" / "cuda-pathfinder").mkdir(parents=True)
    (out / "docs" / "cuda-pathfinder" / "index.html").write_text("the user's own page")
    (out / "notes.txt").write_text("keep me")
    before = _tree(out)
    args = [command, "--tag", TAG, "--repo", str(tagged_repo), "--out", str(out)]
    assert main([*args, *(["--dry-run"] if command == "release" else [])]) == 2
    err = capsys.readouterr().err
    assert f"error: --out {str(out)!r} is not empty (it holds docs, notes.txt)" in err
    assert "choose another --out, or empty this one" in err
    assert _tree(out) == before and sorted(p.name for p in out.iterdir()) == ["docs", "notes.txt"]


def test_a_refused_rerun_keeps_the_real_runs_log(
    tagged_repo: Path, tmp_path: Path, github_env: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    github_env.add_run(git(tagged_repo, "rev-parse", "HEAD"))
    out = tmp_path / "release"
    args = ["release", "--tag", TAG, "--dry-run", "--no-publish", "--repo", str(tagged_repo), "--out", str(out)]
    assert main(args) == 0
    log = (out / "run-log.json").read_bytes()
    assert json.loads(log)["status"] == "succeeded"
    capsys.readouterr()
    assert main(args) == 2
    assert f"--out {str(out)!r} already holds a release folder" in capsys.readouterr().err
    assert (out / "run-log.json").read_bytes() == log, "the record of the real run is kept"


def test_an_altered_sibling_wheel_is_never_used_and_verify_reports_it(
    folder: Path, built: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """siblings/ is never published but installed by later stages: only as recorded when built."""
    commit = json.loads((folder / "release-manifest.json").read_text())["commit"]
    siblings = folder / "siblings"
    siblings.mkdir()
    wheel = Path(shutil.copy(next((folder / "dist").glob("*.whl")), siblings))  # stands in for a sibling
    write_record(siblings, commit, [wheel])
    assert main(["verify", "--release-dir", str(folder)]) == 0
    assert "siblings/ holds the 1 file(s) recorded when they were built, unchanged" in capsys.readouterr().out
    altered = wheel.read_bytes()[:-7] + b"planted"  # the same size, a planted Requires-Dist say
    wheel.write_bytes(altered)
    assert main(["verify", "--release-dir", str(folder)]) == 1
    out, err = capsys.readouterr()
    said = f"siblings/{wheel.name} has sha256 {hashlib.sha256(altered).hexdigest()}, the record says"
    assert said in out and said in err
    with pytest.raises(CudaCiError, match="nothing was installed"):  # what validate, docs and a dry-run get
        sibling_wheels(built[1], commit, get_unit("cuda-bindings"), siblings, Reporter())
