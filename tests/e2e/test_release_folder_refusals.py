"""validate and publish refuse every broken release folder before the first upload."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cuda_ci.build.hygiene import format_size
from cuda_ci.cli.app import main
from cuda_ci.infra.manifest import ReleaseFolder, file_entry
from tests.helpers import clone, folder_from, git, tagged_clone

pytestmark = pytest.mark.e2e
TAG = "cuda-pathfinder-v1.0.0"


@pytest.fixture(scope="module")
def built_folder(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One real build of cuda-pathfinder 1.0.0 (not yet validated), and its repository."""
    root = tmp_path_factory.mktemp("built")
    repo = tagged_clone(template_repo, root, TAG)
    return folder_from(repo, root, "build", "--tag", TAG), repo


@pytest.fixture(scope="module")
def validated_folder(built_folder: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("validated") / "release"
    shutil.copytree(built_folder[0], out)
    assert main(["validate", "--release-dir", str(out), "--repo", str(built_folder[1])]) == 0
    return out


@pytest.fixture
def folder(built_folder: tuple[Path, Path], tmp_path: Path) -> Path:
    out = tmp_path / "release"
    shutil.copytree(built_folder[0], out)
    return out


def _wheel(folder: Path) -> Path:
    return next((folder / "dist").glob("*.whl"))


def _rewrite_zip(
    path: Path,
    target: Path,
    change: Callable[[str, bytes], tuple[str, bytes] | None],
    add: dict[str, bytes] | None = None,
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(buffer, "w") as result:
        for info in source.infolist():
            changed = change(info.filename, source.read(info.filename))
            if changed is not None:
                result.writestr(changed[0], changed[1])
        for name, data in (add or {}).items():
            result.writestr(name, data)
    path.unlink()
    target.write_bytes(buffer.getvalue())


def _replace_in_manifest(folder: Path, old: Path, new: Path) -> None:
    """Keep the manifest and SHA256SUMS consistent, so the named check is what refuses."""
    release = ReleaseFolder(folder)
    manifest = release.load()
    for i, entry in enumerate(manifest["files"]):
        if entry["name"] == old.name:
            manifest["files"][i] = file_entry(folder, new, entry["kind"], entry["distribution"])
    release.save(manifest)


def _add_to_manifest(folder: Path, new: Path, distribution: str) -> None:
    release = ReleaseFolder(folder)
    manifest = release.load()
    manifest["files"].append(file_entry(folder, new, "wheel", distribution))
    release.save(manifest)


def _validate(folder: Path, repo: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["validate", "--release-dir", str(folder), "--repo", str(repo)]) == 1
    err = capsys.readouterr().err
    assert "nothing was published" in err
    assert "Traceback" not in err
    assert "validation" not in json.loads((folder / "release-manifest.json").read_text())
    return err


def test_wrong_version_in_file_name(
    folder: Path, built_folder: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = _wheel(folder)
    renamed = wheel.with_name(wheel.name.replace("1.0.0", "1.0.1"))
    wheel.rename(renamed)
    _replace_in_manifest(folder, wheel, renamed)
    err = _validate(folder, built_folder[1], capsys)
    assert f"version: {renamed.name} has version 1.0.1 in its name, the release is 1.0.0" in err


def test_wrong_version_in_metadata_only(
    folder: Path, built_folder: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = _wheel(folder)
    fixed = wheel.with_suffix(".tmp")

    def bump(name: str, data: bytes) -> tuple[str, bytes]:
        return (name, data.replace(b"Version: 1.0.0", b"Version: 1.0.2") if name.endswith("METADATA") else data)

    _rewrite_zip(wheel, fixed, bump)
    fixed.rename(wheel)
    _replace_in_manifest(folder, wheel, wheel)
    err = _validate(folder, built_folder[1], capsys)
    assert "METADATA says cuda-pathfinder 1.0.2, expected cuda-pathfinder 1.0.0" in err
    assert "does not match its RECORD hash or size" in err


def test_dev_version_outside_a_snapshot(
    folder: Path, built_folder: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    release = ReleaseFolder(folder)
    manifest = release.load()
    for entry in manifest["files"]:
        path = folder / entry["path"]
        if entry["kind"] in ("sdist", "wheel"):
            new = path.with_name(path.name.replace("1.0.0", "1.0.0.dev3"))
            path.rename(new)
            entry.update(file_entry(folder, new, entry["kind"], entry["distribution"]))
    manifest["version"] = "1.0.0.dev3"
    release.save(manifest)
    err = _validate(folder, built_folder[1], capsys)
    assert "has a dev or local version (1.0.0.dev3); only snapshots may" in err


def test_unexpected_missing_and_two_versions(
    folder: Path, built_folder: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = _wheel(folder)
    stranger = folder / "dist" / "cuda_core-1.0.0-py3-none-any.whl"
    shutil.copy(wheel, stranger)
    _add_to_manifest(folder, stranger, "cuda-core")
    second = folder / "dist" / wheel.name.replace("1.0.0", "1.0.1")
    shutil.copy(wheel, second)
    _add_to_manifest(folder, second, "cuda-pathfinder")
    sdist = next((folder / "dist").glob("*.tar.gz"))
    release = ReleaseFolder(folder)
    manifest = release.load()
    manifest["files"] = [f for f in manifest["files"] if f["name"] != sdist.name]
    release.save(manifest)
    sdist.unlink()
    err = _validate(folder, built_folder[1], capsys)
    assert "cuda_core-1.0.0-py3-none-any.whl is a cuda-core file; cuda-pathfinder releases only cuda-pathfinder" in err
    assert "cuda-pathfinder has files of 2 versions: 1.0.0, 1.0.1" in err
    assert "cuda-pathfinder: 0 sdists, expected exactly 1" in err
    assert "cuda-pathfinder: 2 wheels for py3-none-any, expected exactly 1" in err


def test_corrupted_zip_empty_file_and_unsafe_member(
    folder: Path, built_folder: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = _wheel(folder)
    wheel.write_bytes(wheel.read_bytes()[:200])
    _replace_in_manifest(folder, wheel, wheel)
    err = _validate(folder, built_folder[1], capsys)
    assert f"{wheel.name} is not a readable archive" in err

    sdist = next((folder / "dist").glob("*.tar.gz"))
    sdist.write_bytes(b"")
    _replace_in_manifest(folder, sdist, sdist)
    assert f"{sdist.name} is empty" in _validate(folder, built_folder[1], capsys)


def test_member_escaping_the_install_folder(
    folder: Path, built_folder: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = _wheel(folder)
    tmp = wheel.with_suffix(".tmp")
    _rewrite_zip(wheel, tmp, lambda n, d: (n, d), add={"../evil.pth": b"import os"})
    tmp.rename(wheel)
    _replace_in_manifest(folder, wheel, wheel)
    assert "has a member outside the install folder: '../evil.pth'" in _validate(folder, built_folder[1], capsys)

    _rewrite_zip(wheel, tmp, lambda n, d: None if n == "../evil.pth" else (n, d), add={"/etc/evil": b"x"})
    tmp.rename(wheel)
    _replace_in_manifest(folder, wheel, wheel)
    assert "has a member outside the install folder: '/etc/evil'" in _validate(folder, built_folder[1], capsys)


def test_files_that_disagree_with_the_manifest(
    folder: Path, built_folder: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "dist" / "extra.txt").write_text("not built by this run")
    wheel = _wheel(folder)
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    err = _validate(folder, built_folder[1], capsys)
    assert "dist/extra.txt is not in release-manifest.json" in err
    assert f"dist/{wheel.name} changed since it was built" in err


def _rewrite_sdist(sdist: Path, change: Callable[[str, bytes], bytes]) -> None:
    buffer = io.BytesIO()
    with tarfile.open(sdist, "r:gz") as source, tarfile.open(fileobj=buffer, mode="w:gz") as result:
        for member in source.getmembers():
            data = source.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
            if data is not None:
                data = change(member.name, data)
                member.size = len(data)
            result.addfile(member, io.BytesIO(data) if data is not None else None)
    sdist.write_bytes(buffer.getvalue())


def _add_to_wheel(folder: Path, members: dict[str, bytes]) -> Path:
    wheel = _wheel(folder)
    tmp = wheel.with_suffix(".tmp")
    _rewrite_zip(wheel, tmp, lambda n, d: (n, d), add=members)
    tmp.rename(wheel)
    _replace_in_manifest(folder, wheel, wheel)
    return wheel


def test_a_shared_object_with_debug_sections(
    folder: Path, built_folder: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A real shared object, compiled with -g and linked unstripped, as upstream's bloated wheels held."""
    (tmp_path / "native.c").write_text("int answer(void) { return 42; }\n")
    built = tmp_path / "native.so"
    subprocess.run(["gcc", "-g", "-shared", "-fPIC", "-o", str(built), str(tmp_path / "native.c")], check=True)
    wheel = _add_to_wheel(folder, {"cuda/pathfinder/_native.so": built.read_bytes()})
    err = _validate(folder, built_folder[1], capsys)
    assert f"debug-sections: {wheel.name}: cuda/pathfinder/_native.so carries debug sections (.debug_" in err
    assert "strip it (link with -Wl,--strip-debug, as cuda-ci's builds do, or `auditwheel repair --strip`" in err


def test_a_wheel_shipping_sources(
    folder: Path, built_folder: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = _add_to_wheel(folder, {"cuda/pathfinder/_native.cpp": b"int answer() { return 42; }\n"})
    err = _validate(folder, built_folder[1], capsys)
    assert (
        f"sources: {wheel.name} ships the source file cuda/pathfinder/_native.cpp: leave it out of the wheel, "
        'e.g. with [tool.setuptools.exclude-package-data] "*" = ["*.cpp"] in pyproject.toml' in err
    )


def _declare_in_sdist(folder: Path, table: str) -> Path:
    """Append ``table`` to the sdist's own pyproject.toml, where validate reads the declarations."""
    sdist = next((folder / "dist").glob("*.tar.gz"))

    def declare(name: str, data: bytes) -> bytes:
        return data + table.encode() if name.endswith("/pyproject.toml") and name.count("/") == 1 else data

    _rewrite_sdist(sdist, declare)
    _replace_in_manifest(folder, sdist, sdist)
    return sdist


def test_a_wheel_over_its_declared_budget(
    folder: Path, built_folder: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sdist = _declare_in_sdist(folder, '\n[tool.cuda-ci]\nwheel-size-budget = "1 KiB"\n')
    wheel = _wheel(folder)
    err = _validate(folder, built_folder[1], capsys)
    assert (
        f"size-budget: {wheel.name} is {format_size(wheel.stat().st_size)}, over its budget of 1 KiB (1,024 bytes) "
        f"declared in {sdist.name}:pyproject.toml [tool.cuda-ci] wheel-size-budget: make the wheel smaller" in err
    )


def test_a_budget_that_is_not_a_size(
    folder: Path, built_folder: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sdist = _declare_in_sdist(folder, "\n[tool.cuda-ci]\nwheel-size-budget = 2097152\n")
    assert main(["validate", "--release-dir", str(folder), "--repo", str(built_folder[1])]) == 1
    err = capsys.readouterr().err
    assert f"error: {sdist.name}:pyproject.toml: [tool.cuda-ci] wheel-size-budget = 2097152 is not a size" in err
    assert "Traceback" not in err and "validation" not in ReleaseFolder(folder).load()


def test_an_sdist_that_builds_no_wheel(
    folder: Path, built_folder: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The build's wheel proves only the very sdist it came from: any other sdist is built again, and fails."""
    manifest = ReleaseFolder(folder).load()
    sdist_entry = next(f for f in manifest["files"] if f["kind"] == "sdist")
    wheel_entry = next(f for f in manifest["files"] if f["kind"] == "wheel")
    assert wheel_entry["built_from"] == {"sdist": sdist_entry["name"], "sha256": sdist_entry["sha256"]}
    sdist = folder / sdist_entry["path"]

    def no_backend(name: str, data: bytes) -> bytes:
        if name.endswith("/pyproject.toml") and name.count("/") == 1:
            return data.replace(b'build-backend = "setuptools.build_meta"', b'build-backend = "no_such_backend"')
        return data

    _rewrite_sdist(sdist, no_backend)
    _replace_in_manifest(folder, sdist, sdist)
    # not _validate(): the tail of the frontend's output, the backend's traceback included, is the useful part
    assert main(["validate", "--release-dir", str(folder), "--repo", str(built_folder[1])]) == 1
    err = capsys.readouterr().err
    assert f"error: sdist-builds-wheel: wheel build from {sdist.name} failed" in err
    assert "no_such_backend" in err and "nothing was published" in err
    assert "validation" not in ReleaseFolder(folder).load()


def test_a_wheel_not_built_from_the_sdist_sends_validate_to_build_one(
    folder: Path, built_folder: tuple[Path, Path]
) -> None:
    wheel = _wheel(folder)
    _replace_in_manifest(folder, wheel, wheel)  # the same file, without its built_from link
    assert main(["validate", "--release-dir", str(folder), "--repo", str(built_folder[1])]) == 0
    checks = [v for v in ReleaseFolder(folder).load()["validation"] if v["check"] == "sdist-builds-wheel"]
    assert [c["detail"] for c in checks] == [f"built {wheel.name} from it here"]


def test_validate_records_every_check_and_freezes(validated_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = json.loads((validated_folder / "release-manifest.json").read_text())
    checks = {(v["check"], v["status"]) for v in manifest["validation"]}
    assert ("twine", "passed") in checks and ("sdist-builds-wheel", "passed") in checks
    sdist = next(v for v in manifest["validation"] if v["check"] == "sdist-builds-wheel")
    assert sdist["detail"].startswith("the build stage built cuda_pathfinder-1.0.0-py3-none-any.whl from this sdist")
    assert main(["validate", "--release-dir", str(validated_folder)]) == 1
    assert "is already validated and frozen" in capsys.readouterr().err


@pytest.mark.parametrize("target", ["github", "testpypi", "pypi", "finalize", "all"])
def test_publish_refuses_a_tampered_folder_before_any_upload(
    validated_folder: Path,
    tmp_path: Path,
    target: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "release"
    shutil.copytree(validated_folder, folder)
    wheel = _wheel(folder)
    wheel.write_bytes(wheel.read_bytes()[:-1] + b"X")
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:9")  # nothing may be contacted
    assert main(["publish", "--release-dir", str(folder), "--target", target, "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert f"dist/{wheel.name} changed since it was built" in err
    assert "publish refused: nothing was uploaded" in err
    assert not (folder / "index").exists() and not (folder / "github-release").exists()


def test_publish_refuses_an_unvalidated_folder_and_a_moved_tag(
    built_folder: tuple[Path, Path], validated_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["publish", "--release-dir", str(built_folder[0]), "--dry-run"]) == 1
    assert "has no validation: run `cuda-ci validate" in capsys.readouterr().err
    repo = clone(built_folder[1], tmp_path / "moved")
    (repo / "cuda_pathfinder" / "NEW.txt").write_text("x")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "later")
    git(repo, "tag", "-f", TAG)
    assert main(["publish", "--release-dir", str(validated_folder), "--dry-run", "--repo", str(repo)]) == 1
    assert f"tag {TAG} now points to" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["validate", "--release-dir", "/nonexistent/folder"], "does not exist or is not a directory"),
        (["docs", "--release-dir", "."], "is not a release folder: release-manifest.json is missing"),
        (["publish", "--release-dir", "/tmp"], "is not a release folder"),
        (
            ["build", "--snapshot", "--component", "cuda-core", "--repo", "/nonexistent"],
            "--repo '/nonexistent' does not exist",
        ),
        (["build", "--snapshot", "--component", "cuda-core", "--repo", "/"], "is not a git repository"),
    ],
)
def test_bad_paths_are_named(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err


def _state(folder: Path) -> dict[str, bytes]:
    """Every file of the folder with its bytes: what "the folder as it was" means."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _validate_extra(folder: Path, repo: Path, extra: Path) -> int:
    return main(["validate", "--release-dir", str(folder), "--repo", str(repo), "--extra-dist", str(extra)])


def test_a_windows_extra_wheel_for_a_pure_unit_is_refused_before_any_copy(
    folder: Path, built_folder: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.e2e.test_wheels_only_and_extra_dist import retag_as_windows

    extra = tmp_path / "windows"
    extra.mkdir()
    windows = retag_as_windows(_wheel(folder), "cp311", extra)
    before = _state(folder)
    assert _validate_extra(folder, built_folder[1], extra) == 1
    err = capsys.readouterr().err
    assert f"error: --extra-dist: {windows.name} is a platform wheel, but cuda-pathfinder builds only a pure" in err
    assert f"--extra-dist refused: nothing was copied into {folder}" in err
    assert "internal error" not in err and "StopIteration" not in err
    assert _state(folder) == before


def test_a_refused_extra_dist_leaves_the_folder_as_it_was(
    folder: Path, built_folder: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    stranger = extra / "cuda_pathfinder_extra-1.0.0-py3-none-any.whl"  # passes the name checks, not validate's
    shutil.copy2(_wheel(folder), stranger)
    before = _state(folder)
    assert _validate_extra(folder, built_folder[1], extra) == 1
    err = capsys.readouterr().err
    assert f"expected-files: {stranger.name} is a cuda-pathfinder-extra file; cuda-pathfinder releases only" in err
    assert _state(folder) == before, "the wheel and its SBOM were taken out again; the manifest is untouched"
    (extra / "not-a-wheel.whl").write_bytes(b"")
    (extra / "linked-1.0.0-py3-none-any.whl").symlink_to(_wheel(folder))
    assert _validate_extra(folder, built_folder[1], extra) == 1
    err = capsys.readouterr().err
    assert "error: --extra-dist: not-a-wheel.whl: not a valid wheel or sdist file name" in err
    assert "--extra-dist: linked-1.0.0-py3-none-any.whl is a link or not a plain file" in err
    assert _state(folder) == before


def test_a_tag_moved_after_preflight_is_named_as_such(
    template_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cuda_ci.cli import commands
    from tests.helpers import commit_change

    repo = tagged_clone(template_repo, tmp_path, TAG)
    resolved = git(repo, "rev-parse", "HEAD")
    checked = commands.preflight

    def then_the_tag_is_moved(**kwargs: Any) -> Any:
        found = checked(**kwargs)
        moved = commit_change(repo, "pushed after the tag")
        git(repo, "tag", "-f", TAG, moved)  # someone force-moves the tag while the run goes on
        return found

    monkeypatch.setattr(commands, "preflight", then_the_tag_is_moved)
    for name in ("GITHUB_TOKEN", "GH_TOKEN", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:9")
    out = tmp_path / "rel"
    argv = ["release", "--tag", TAG, "--dry-run", "--no-publish", "--repo", str(repo), "--out", str(out)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    now = git(repo, "rev-parse", TAG)
    assert f"error: tag {TAG} moved while this run used it: it named {resolved[:12]}" in err
    assert f"now points to {now[:12]}: a release tag must never move" in err
    assert "setuptools-scm computes" not in err and "tag_regex" not in err


def test_sdists_and_the_manifest_are_written_with_the_usual_mode(built_folder: tuple[Path, Path]) -> None:
    umask = os.umask(0)
    os.umask(umask)
    folder = built_folder[0]
    written = [*(folder / "dist").glob("*.tar.gz"), folder / "release-manifest.json", folder / "SHA256SUMS"]
    assert len(written) == 3
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, f"{path.name}: not 0600, readable as any file"
