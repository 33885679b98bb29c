"""Verifiable releases: the manifest schema, SBOMs, verify (folder and GitHub), attestations, rebuilds."""

from __future__ import annotations

import base64
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from cuda_ci.build.hygiene import debug_sections, is_shared_object
from cuda_ci.build.sbom import check_sbom
from cuda_ci.cli.app import main
from cuda_ci.infra.manifest import ReleaseFolder, check_schema, sha256_of
from cuda_ci.publish.provenance import attestation_name
from tests.fakes.github import FakeGitHub
from tests.helpers import folder_from, result_document, tagged_clone

pytestmark = pytest.mark.e2e
TAG = "v13.0.0"


@pytest.fixture(scope="module")
def release_folder(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One dry-run release of cuda-bindings + cuda-python (C extension included), and its repository."""
    root = tmp_path_factory.mktemp("provenance")
    repo = tagged_clone(template_repo, root, "cuda-pathfinder-v1.0.0", TAG)
    return folder_from(repo, root, "release", "--tag", TAG, "--dry-run", "--no-publish"), repo


@pytest.fixture
def folder(release_folder: tuple[Path, Path], tmp_path: Path) -> Path:
    copy = tmp_path / "release"
    shutil.copytree(release_folder[0], copy)
    return copy


def _attestation(name: str, sha256: str) -> str:
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": sha256}}],
        "predicateType": "https://docs.pypi.org/attestations/publish/v1",
        "predicate": None,
    }
    encode = lambda data: base64.b64encode(data).decode()  # noqa: E731
    return json.dumps(
        {
            "version": 1,
            "verification_material": {"certificate": encode(b"test certificate"), "transparency_entries": [{}]},
            "envelope": {"statement": encode(json.dumps(statement).encode()), "signature": encode(b"signature")},
        }
    )


def test_every_wheel_has_a_valid_cyclonedx_sbom_listed_in_the_manifest(release_folder: tuple[Path, Path]) -> None:
    out, _ = release_folder
    manifest = ReleaseFolder(out).load()
    wheels = {f["name"]: f for f in manifest["files"] if f["kind"] == "wheel"}
    sboms = [f for f in manifest["files"] if f["kind"] == "sbom"]
    assert sorted(f["name"] for f in sboms) == sorted(f"{w}.cdx.json" for w in wheels)
    for entry in sboms:
        assert entry["path"].startswith("assets/") and entry["distribution"] is None
        text = (out / entry["path"]).read_text()
        check_sbom(text, entry["name"])
        bom = json.loads(text)
        wheel = wheels[entry["name"].removesuffix(".cdx.json")]
        main_component = bom["metadata"]["component"]
        assert main_component["hashes"] == [{"alg": "SHA-256", "content": wheel["sha256"]}]
        assert main_component["version"] == "13.0.0"
    python_sbom = json.loads(
        (out / "assets" / next(n for n in map(lambda f: f["name"], sboms) if "cuda_python" in n)).read_text()
    )
    assert [c["name"] for c in python_sbom["components"]] == ["cuda-bindings"]


def test_validate_checked_the_extension_s_hygiene(release_folder: tuple[Path, Path]) -> None:
    out, _ = release_folder
    wheel = next((out / "dist").glob("cuda_bindings-*.whl")).name
    checks = {(v["check"], v["file"]): (v["status"], v["detail"]) for v in ReleaseFolder(out).load()["validation"]}
    assert checks[("debug-sections", wheel)] == ("passed", "1 ELF shared object(s), none with debug sections")
    assert checks[("sources", wheel)] == ("passed", "no .c/.cc/.cpp/.cxx/.cu/.pyx files")
    status, detail = checks[("size-budget", wheel)]
    assert status == "passed" and detail.endswith("within 64 KiB (cuda_bindings-13.0.0.tar.gz:pyproject.toml)")


def test_a_host_build_strips_what_it_compiles_with_debug_info(
    release_folder: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``CFLAGS=-g`` (a developer's environment; an interpreter's own flags) puts DWARF into the
    object files; the release's link drops it from the extension."""
    monkeypatch.setenv("CFLAGS", "-g")
    out = folder_from(release_folder[1], tmp_path, "build", "--tag", TAG)
    wheel = next((out / "dist").glob("cuda_bindings-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        [extension] = [n for n in archive.namelist() if is_shared_object(n)]
        assert debug_sections(archive.read(extension)) == [], f"{extension} in {wheel.name}"


def test_every_manifest_matches_the_published_schema(release_folder: tuple[Path, Path]) -> None:
    import jsonschema

    from cuda_ci.infra.manifest import SCHEMA_FILE

    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft7Validator.check_schema(schema)  # a well-formed schema, by a second implementation
    manifest = ReleaseFolder(release_folder[0]).load()
    check_schema(manifest)
    jsonschema.validate(manifest, schema)
    broken = json.loads(json.dumps(manifest))
    broken["files"][0]["sha256"] = "not-a-digest"
    del broken["commit"]
    with pytest.raises(Exception, match=r"release manifest: (\(root\)|files/0/sha256)"):
        check_schema(broken)


def test_verify_passes_on_a_good_release_folder(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--release-dir", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "SHA256SUMS lists exactly the manifest's files and hashes" in out
    assert "version 13.0.0 is the tag's (v13.0.0)" in out


def test_verify_reports_every_mismatch(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wheel = next((folder / "dist").glob("cuda_python-*.whl"))
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    sums = folder / "SHA256SUMS"
    sums.write_text(sums.read_text().replace("cuda-bindings-13.0.0-source.tar.gz", "renamed.tar.gz"))
    assert main(["verify", "--release-dir", str(folder)]) == 1
    captured = capsys.readouterr()
    assert f"FAIL  {wheel.name}: sha256" in captured.out
    assert "SHA256SUMS disagrees with the manifest: cuda-bindings-13.0.0-source.tar.gz, renamed.tar.gz" in captured.out
    assert "error: verify: 2 mismatch(es)" in captured.err


def test_verify_checks_attestations_pairing_and_digest(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wheel = next((folder / "dist").glob("cuda_bindings-*.whl"))
    sdist = next((folder / "dist").glob("cuda_bindings-*.tar.gz"))
    attestations = folder / "attestations"
    attestations.mkdir()
    (attestations / attestation_name(wheel.name)).write_text(_attestation(wheel.name, sha256_of(wheel)))
    assert main(["verify", "--release-dir", str(folder)]) == 0
    assert f"{attestation_name(wheel.name)}: subject is {wheel.name} with its sha256" in capsys.readouterr().out

    (attestations / attestation_name(sdist.name)).write_text(_attestation(sdist.name, "0" * 64))
    (attestations / attestation_name("cuda_core-9.9.9.tar.gz")).write_text(_attestation("x", "0" * 64))
    assert main(["verify", "--release-dir", str(folder)]) == 1
    out = capsys.readouterr().out
    assert f"attests sha256 {'0' * 64}, but {sdist.name} has sha256 {sha256_of(sdist)}" in out
    assert "cuda_core-9.9.9.tar.gz.publish.attestation attests no file of this release" in out


def test_sign_outside_actions_is_skipped_with_a_note(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_URL", raising=False)
    assert main(["sign", "--release-dir", str(folder), "--json"]) == 0
    captured = capsys.readouterr()
    assert "sign: skipped, no GitHub Actions OIDC token here" in captured.err
    assert result_document(captured.out, "sign")["attestations"] == []
    assert not (folder / "attestations").exists()


def test_verify_from_github_downloads_the_assets_and_checks_them(
    release_folder: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "release"
    shutil.copytree(release_folder[0], out)
    github = FakeGitHub().start()
    try:
        for key, value in github.environ().items():
            monkeypatch.setenv(key, value)
        (out / "attestations").mkdir()
        wheel = next((out / "dist").glob("cuda_bindings-*.whl"))
        (out / "attestations" / attestation_name(wheel.name)).write_text(_attestation(wheel.name, sha256_of(wheel)))
        assert main(["publish", "--release-dir", str(out), "--target", "github", "--repo", str(release_folder[1])]) == 0
        assert attestation_name(wheel.name) in github.asset_names(TAG)
        github.release(TAG)["draft"] = False
        assert main(["verify", "--tag", TAG, "--from-github"]) == 0
        assert "verified:" in capsys.readouterr().out
        assert not [p for m, p in github.requests if p.startswith("/download/") and m != "GET"]
        blob_id = next(a["id"] for a in github.assets[github.release(TAG)["id"]] if a["name"] == wheel.name)
        github.blobs[blob_id] = github.blobs[blob_id] + b"tampered"
        assert main(["verify", "--tag", TAG, "--from-github", "--json"]) == 1
        report = result_document(capsys.readouterr().out, "verify")
        assert report["status"] == "failed" and report["tag"] == TAG
        assert [p for p in report["problems"] if p.startswith(f"{wheel.name}: sha256")]
    finally:
        github.stop()
    assert main(["verify", "--tag", TAG]) == 2


def test_a_rebuild_reproduces_every_file(release_folder: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out, repo = release_folder
    assert main(["verify-reproducible", "--release-dir", str(out), "--repo", str(repo), "--json"]) == 0
    compared = result_document(capsys.readouterr().out, "verify-reproducible")["results"]
    statuses = {result["name"]: result["status"] for result in compared}
    manifest = ReleaseFolder(out).load()
    assert statuses == {f["name"]: "same" for f in manifest["files"]}, "sdists, the C-extension wheel, SBOMs, archive"


def test_a_changed_file_is_reported_as_not_reproducible(
    release_folder: tuple[Path, Path], folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    release = ReleaseFolder(folder)
    manifest = release.load()
    wheel_entry = next(f for f in manifest["files"] if f["name"].startswith("cuda_python") and f["kind"] == "wheel")
    wheel_entry["sha256"] = "f" * 64
    setuptools_now = manifest["tools"]["build-env/setuptools"]
    manifest["tools"]["build-env/setuptools"] = "70.0.0"  # as if built with an older setuptools
    release.manifest_path.write_text(json.dumps(manifest))
    argv = ["verify-reproducible", "--release-dir", str(folder), "--repo", str(release_folder[1]), "--json"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    report = result_document(captured.out, "verify-reproducible")
    assert report["status"] == "failed" and wheel_entry["name"] in report["errors"][0]["message"]
    err = captured.err
    assert f"{wheel_entry['name']} is not reproducible: sha256" in err
    assert f"the build environment differs: setuptools 70.0.0 -> {setuptools_now}" in err


def test_verify_refuses_an_invalid_sbom(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    release = ReleaseFolder(folder)
    manifest = release.load()
    entry = next(f for f in manifest["files"] if f["kind"] == "sbom")
    path = folder / entry["path"]
    bom = json.loads(path.read_text())
    bom["components"] = "not a list"
    path.write_text(json.dumps(bom))
    entry["sha256"], entry["size"] = sha256_of(path), path.stat().st_size
    release.save(manifest)
    assert main(["verify", "--release-dir", str(folder)]) == 1
    assert f"the SBOM of {entry['name']} is not valid CycloneDX 1.6" in capsys.readouterr().out
