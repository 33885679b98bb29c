"""Trust boundaries, the decisions alone: which variables are credentials and how they are handed
over, what a kept environment's record catches, which cache a command uses, what a publish reads
from the folder (its log, the siblings) and where an index serves a file."""

from __future__ import annotations

import argparse
import json
import os
import zipfile
from pathlib import Path

import pytest

from cuda_ci.build.sibling_record import folder_sibling_problems, record_path, recorded_files, write_record
from cuda_ci.cli.flags import build_parser, cache_trust, publish_phases
from cuda_ci.infra import credentials, secrets
from cuda_ci.infra.components import get_unit
from cuda_ci.infra.envcontent import content_problem, record_content
from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.index import _Links
from cuda_ci.infra.manifest import Manifest, ReleaseFolder
from cuda_ci.infra.toolenvs import cache_namespace, envs_dir, tool_environ, use_cache_dir
from cuda_ci.publish.publish_log import PublishLog, read_entries
from cuda_ci.publish.targets import _install_back_plan

TOKENS = {
    "GITHUB_TOKEN": "ghs_UnitGitHubToken0123456789",
    "CUDA_CI_PYPI_TOKEN": "pypi-UnitPyPIToken4242",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "UnitOidcRequestToken77",
    "ACTIONS_ID_TOKEN_REQUEST_URL": "https://pipelines.example.invalid/oidc?audience=x",
}


@pytest.fixture(autouse=True)
def _forget_registered_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "_registered", set())


def test_every_credential_variable_moves_out_of_the_environment_block() -> None:
    environ = {
        **TOKENS,
        "CUDA_CI_TESTPYPI_SIMPLE_URL": "https://user:UnitSimplePassword@test.example.invalid/simple/",
        "INPUT_PASSWORD": TOKENS["CUDA_CI_PYPI_TOKEN"],  # a copy under another name
        "PATH": "/usr/bin",
        "CUDA_CI_PYPI_SIMPLE_URL": "https://pypi.example.invalid/simple/",  # no credentials: stays
    }
    clean, held = credentials.split_secrets(environ)
    assert clean == {"PATH": "/usr/bin", "CUDA_CI_PYPI_SIMPLE_URL": "https://pypi.example.invalid/simple/"}
    assert set(held) == {*TOKENS, "CUDA_CI_TESTPYPI_SIMPLE_URL", "INPUT_PASSWORD"}
    assert "ACTIONS_ID_TOKEN_REQUEST_URL" in secrets.SECRET_VARIABLES, "the OIDC request URL is a secret too"


def _handed_over(monkeypatch: pytest.MonkeyPatch, payload: bytes) -> int:
    read_end, write_end = os.pipe()
    os.write(write_end, payload)
    os.close(write_end)
    monkeypatch.setenv(credentials.FD_VARIABLE, str(read_end))
    monkeypatch.setattr(credentials, "_not_dumpable", lambda: None)  # never this test process
    return read_end


def test_the_re_executed_cli_reads_the_hand_over_and_closes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    fd = _handed_over(monkeypatch, json.dumps(TOKENS).encode())
    assert credentials.received_secrets() == TOKENS
    assert credentials.FD_VARIABLE not in os.environ, "no child learns of the hand-over"
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)
    assert credentials.received_secrets() == {}, "nothing handed over: nothing received"


@pytest.mark.parametrize("payload", [b"not json", b'["a list"]', b'{"GITHUB_TOKEN": 42}'])
def test_a_hand_over_that_is_not_cuda_ci_s_is_refused(monkeypatch: pytest.MonkeyPatch, payload: bytes) -> None:
    _handed_over(monkeypatch, payload)
    with pytest.raises(credentials.HandoffError, match=f"{credentials.FD_VARIABLE}=\\d+ (names|holds) no credential"):
        credentials.received_secrets()


@pytest.mark.parametrize("number", ["99999", "0", "x"])
def test_a_variable_naming_no_hand_over_is_refused(monkeypatch: pytest.MonkeyPatch, number: str) -> None:
    monkeypatch.setenv(credentials.FD_VARIABLE, number)
    with pytest.raises(credentials.HandoffError, match=f"CUDA_CI_SECRETS_FD={number} names no credential hand-over"):
        credentials.received_secrets()


# --- kept environments --------------------------------------------------------------------------


def _environment(root: Path) -> Path:
    site = root / "lib" / "python3.12" / "site-packages"
    (site / "setuptools").mkdir(parents=True)
    (site / "setuptools" / "__init__.py").write_text("VERSION = 1\n")
    (root / "bin").mkdir()
    (root / "bin" / "python").symlink_to("/usr/bin/python3")
    record_content(root)
    return site


def test_a_dropped_pth_file_a_changed_file_and_a_retargeted_link_are_found(tmp_path: Path) -> None:
    site = _environment(tmp_path)
    assert content_problem(tmp_path) is None
    (site / "zz-poison.pth").write_text("import os; os.system('id')\n")
    assert content_problem(tmp_path) == "lib/python3.12/site-packages/zz-poison.pth was added"
    (site / "setuptools" / "__init__.py").write_text("VERSION = 2\n")  # same size, other bytes
    (tmp_path / "bin" / "python").unlink()
    (tmp_path / "bin" / "python").symlink_to("/tmp/evil-python")
    problem = content_problem(tmp_path)
    assert problem is not None
    assert "bin/python was changed" in problem and "setuptools/__init__.py was changed" in problem
    (tmp_path / "cuda-ci-content.json").unlink()
    assert content_problem(tmp_path) == "its content record cuda-ci-content.json is missing or not a plain file"


def test_kept_tools_run_without_writing_bytecode() -> None:
    assert tool_environ({"PATH": "/bin"}) == {"PATH": "/bin", "PYTHONDONTWRITEBYTECODE": "1"}


def test_releases_and_untrusted_work_keep_environments_apart(tmp_path: Path) -> None:
    with use_cache_dir(tmp_path), cache_namespace("release"):
        assert envs_dir() == tmp_path / "release" / "envs"
        with cache_namespace("untrusted"):
            assert envs_dir() == tmp_path / "untrusted" / "envs"
        assert envs_dir() == tmp_path / "release" / "envs"


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def _manifest_only(folder: Path, snapshot: bool) -> Path:
    folder.mkdir()
    (folder / "release-manifest.json").write_text(json.dumps({"schema": 1, "snapshot": snapshot}))
    return folder


def test_which_commands_use_a_release_s_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ReleaseFolder, "load", lambda self: json.loads(self.manifest_path.read_text()))
    snapshot, release = _manifest_only(tmp_path / "s", True), _manifest_only(tmp_path / "r", False)
    assert cache_trust(_args("build", "--tag", "v13.0.0")) == "release"
    assert cache_trust(_args("release", "--tag", "v13.0.0", "--dry-run", "--rehearse", "--ref", "x")) == "release"
    assert cache_trust(_args("build", "--snapshot", "--component", "cuda-core")) == "untrusted"
    assert cache_trust(_args("test", "--component", "cuda-core")) == "untrusted"
    assert cache_trust(_args("ci")) == "untrusted"
    assert cache_trust(_args("docs", "--release-dir", str(release))) == "release"
    assert cache_trust(_args("docs", "--release-dir", str(snapshot))) == "untrusted"
    assert cache_trust(_args("validate", "--release-dir", str(tmp_path / "missing"))) == "untrusted"


def test_publish_s_upload_and_install_back_apart() -> None:
    assert publish_phases(_args("publish", "--release-dir", "r")) == ("upload", "install-back")
    assert publish_phases(_args("publish", "--release-dir", "r", "--no-install-back")) == ("upload",)
    assert publish_phases(_args("publish", "--release-dir", "r", "--target", "pypi", "--install-back-only")) == (
        "install-back",
    )
    with pytest.raises(SystemExit):
        _args("publish", "--release-dir", "r", "--no-install-back", "--install-back-only")


# --- what publish reads from the folder -------------------------------------------------------


def _log(folder: Path, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "publish-log.json").write_text(text)
    return folder / "publish-log.json"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "is not JSON"),
        ('{"schema": 2, "entries": []}', "it is not a schema 1 publish log"),
        ('{"schema": 1, "entries": [{"action": "uploaded"}]}', "entry 0 is not an object of the five strings"),
        ('{"schema": 1, "entries": [["a"]]}', "entry 0 is not an object"),
    ],
)
def test_a_publish_log_of_another_shape_is_refused(tmp_path: Path, text: str, message: str) -> None:
    path = _log(tmp_path / "release", text)
    with pytest.raises(CudaCiError, match=message) as raised:
        PublishLog(path)
    assert str(path) in raised.value.problems[0] and "remove" in raised.value.problems[0]


def test_a_publish_log_that_is_a_link_or_too_large_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text('{"schema": 1, "entries": []}')
    folder = tmp_path / "release"
    folder.mkdir()
    (folder / "publish-log.json").symlink_to(outside)
    with pytest.raises(CudaCiError, match=r"publish-log\.json is a symbolic link"):
        read_entries(folder / "publish-log.json")
    (folder / "publish-log.json").unlink()
    path = _log(folder, '{"schema": 1, "entries": []}')
    assert read_entries(path) == []
    monkeypatch.setattr("cuda_ci.publish.publish_log.MAX_LOG_BYTES", 10)
    with pytest.raises(CudaCiError, match="over the 10 a publish log may"):
        read_entries(path)


def _wheel(folder: Path, name: str, version: str, requires: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{name.replace('-', '_')}-{version}"
    path = folder / f"{stem}-py3-none-any.whl"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{stem}.dist-info/METADATA", metadata)
    return path


def test_a_real_publish_reads_no_sibling_from_the_folder(tmp_path: Path) -> None:
    """A sibling wheel altered in the artifact (a planted requirement) never reaches the install-back
    plan of a real publish; the siblings come from the index it publishes to."""
    wheel = _wheel(tmp_path / "dist", "cuda-bindings", "13.0.0", ["cuda-pathfinder>=1.0,<2"])
    planted = _wheel(tmp_path / "siblings", "cuda-pathfinder", "1.0.0", ["planted-package>=0"])
    entry = {"name": wheel.name, "path": f"dist/{wheel.name}", "kind": "wheel", "distribution": "cuda-bindings"}
    manifest: Manifest = {"version": "13.0.0", "files": [entry]}  # type: ignore[typeddict-item]
    unit = get_unit("cuda-bindings")
    requirements, third_party = _install_back_plan(ReleaseFolder(tmp_path), manifest, unit, siblings=())
    assert "cuda-bindings==13.0.0" in requirements and third_party == []
    _, dry_run = _install_back_plan(ReleaseFolder(tmp_path), manifest, unit, siblings=[planted])
    assert dry_run == ["planted-package>=0"], "a dry-run's siblings are checked before they get here"


def test_a_project_page_s_links_are_absolute_and_without_the_hash() -> None:
    links = _Links("http://127.0.0.1:8080/simple/cuda-pathfinder/")
    links.feed('<a href="../../packages/cuda_pathfinder-1.0.0.tar.gz#sha256=ab12">cuda_pathfinder-1.0.0.tar.gz</a>')
    served = links.files["cuda_pathfinder-1.0.0.tar.gz"]
    assert served.url == "http://127.0.0.1:8080/packages/cuda_pathfinder-1.0.0.tar.gz" and served.sha256 == "ab12"


COMMIT = "c0ffee" * 6 + "abcd"


def test_siblings_are_used_only_as_recorded_when_built(tmp_path: Path) -> None:
    dest = tmp_path / "siblings"
    built = _wheel(dest, "cuda-pathfinder", "1.0.0", [])
    write_record(dest, COMMIT, [built])
    assert recorded_files(dest, COMMIT) == [built]
    planted = _wheel(dest, "cuda-bindings", "13.0.0", ["planted-package"])
    assert recorded_files(dest, COMMIT) == [built], "a file no record lists is never used"
    assert folder_sibling_problems(dest) == (["siblings/" + planted.name + " is in no record of the siblings built"], 1)
    planted.unlink()
    original = built.read_bytes()
    _wheel(dest, "cuda-pathfinder", "1.0.0", ["planted-package>=0"])  # the same name, altered
    with pytest.raises(CudaCiError) as raised:
        recorded_files(dest, COMMIT)
    first, last = raised.value.problems[0], raised.value.problems[-1]
    assert first.startswith(f"siblings/{built.name} has ") and "the record says" in first
    assert f"the siblings in {dest} changed since they were built at {COMMIT[:12]}: nothing was installed" in last
    assert f"remove {dest}" in last
    built.unlink()
    built.symlink_to(tmp_path / "elsewhere.whl")
    (tmp_path / "elsewhere.whl").write_bytes(original)
    with pytest.raises(CudaCiError, match="is missing, a link or not a regular file"):
        recorded_files(dest, COMMIT)


def test_a_siblings_record_that_is_not_cuda_ci_s_is_refused(tmp_path: Path) -> None:
    dest = tmp_path / "siblings"
    dest.mkdir()
    record_path(dest, COMMIT).write_text(COMMIT + "\n")  # an older cuda-ci's marker, or anything else
    with pytest.raises(CudaCiError, match=r"is not JSON .*: remove .* \(it is built again from the commit\)"):
        recorded_files(dest, COMMIT)
    record_path(dest, COMMIT).write_text(json.dumps({"schema": 1, "commit": "another", "files": {}}))
    with pytest.raises(CudaCiError, match=f"is not cuda-ci's record of the siblings built at {COMMIT}"):
        recorded_files(dest, COMMIT)
