"""Tests that try to break a release: misbehaving servers, concurrent runs, bad input, leaked secrets."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cuda_ci.cli.app import main
from cuda_ci.infra import toolenvs
from cuda_ci.infra.git import Git
from cuda_ci.infra.index import EmbeddedIndex, embedded_index
from cuda_ci.infra.manifest import sha256_of
from cuda_ci.publish.run import release_lock
from tests.fakes.github import FakeGitHub
from tests.fakes.proxy import FlakyIndex, RecordingServer
from tests.helpers import git
from tests.unit.test_tags import GARBAGE

pytestmark = pytest.mark.e2e
TAG = "cuda-pathfinder-v1.0.0"
TOKENS = {
    "GITHUB_TOKEN": "ghs_DistinctiveGitHubToken0123456789",
    "GH_TOKEN": "gho_DistinctiveGhToken9876543210",
    "CUDA_CI_TESTPYPI_TOKEN": "pypi-DistinctiveTestPyPIToken42",
    "CUDA_CI_PYPI_TOKEN": "pypi-DistinctivePyPIToken4242",
}
# Credentials written into settings URLs (userinfo): secrets as much as the tokens.
URL_SECRETS = {
    "GITHUB_API_URL": "DistinctiveApiUrlPassword77",
    "CUDA_CI_TESTPYPI_SIMPLE_URL": "DistinctiveSimpleUrlPassword88",
    "CUDA_CI_PYPI_SIMPLE_URL": "DistinctiveSimpleUrlPassword99",
}


def _with_userinfo(url: str, password: str, user: str = "someone") -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{user}:{password}@{rest}"


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cuda_ci.publish.uploads.UPLOAD_BACKOFF", 0.01)
    monkeypatch.setattr("cuda_ci.infra.httpclient.DEFAULT_BACKOFF", 0.01)


@pytest.fixture
def flaky_testpypi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FlakyIndex, EmbeddedIndex]]:
    with embedded_index("testpypi", tmp_path / "testpypi-data") as index:
        proxy = FlakyIndex(upstream=index.upload_url).start()
        try:
            monkeypatch.setenv("CUDA_CI_TESTPYPI_UPLOAD_URL", proxy.url + "/")
            monkeypatch.setenv("CUDA_CI_TESTPYPI_SIMPLE_URL", proxy.url + "/simple/")
            monkeypatch.setenv("CUDA_CI_TESTPYPI_TOKEN", "pypi-token-for-the-flaky-index")
            yield proxy, index
        finally:
            proxy.stop()


@pytest.fixture
def validated(tagged_repo: Path, tmp_path: Path, github_env: FakeGitHub) -> Path:
    github_env.add_run(git(tagged_repo, "rev-parse", "HEAD"))
    out = tmp_path / "release"
    assert main(["release", "--tag", TAG, "--no-publish", "--repo", str(tagged_repo), "--out", str(out)]) == 0
    return out


def _publish(folder: Path, repo: Path, target: str = "testpypi") -> int:
    return main(["publish", "--release-dir", str(folder), "--target", target, "--repo", str(repo)])


def _dists(folder: Path) -> dict[str, str]:
    return {p.name: sha256_of(p) for p in (folder / "dist").iterdir()}


@pytest.mark.usefixtures("fast_retries")
def test_index_errors_are_retried_visibly_then_succeed(
    validated: Path,
    tagged_repo: Path,
    flaky_testpypi: tuple[FlakyIndex, EmbeddedIndex],
    capsys: pytest.CaptureFixture[str],
) -> None:
    proxy, index = flaky_testpypi
    proxy.fail_posts = 2
    assert _publish(validated, tagged_repo) == 0
    err = capsys.readouterr().err
    assert 'testpypi: WARNING  Received "503: Service Unavailable"' in err
    assert "Retry 1 of 5." in err and "Retry 2 of 5." in err
    assert {p.name: sha256_of(p) for p in index.root.iterdir()} == _dists(validated)


@pytest.mark.usefixtures("fast_retries")
def test_an_index_that_keeps_failing_names_itself_and_a_rerun_completes(
    validated: Path,
    tagged_repo: Path,
    flaky_testpypi: tuple[FlakyIndex, EmbeddedIndex],
    capsys: pytest.CaptureFixture[str],
) -> None:
    proxy, index = flaky_testpypi
    proxy.fail_posts = 1000
    assert _publish(validated, tagged_repo) == 1
    err = capsys.readouterr().err
    assert f"to testpypi ({proxy.url}/) failed 4 times" in err
    assert "HTTPError: 503 Service Unavailable" in err and "; retry 3 of 3 in" in err and "Retry 5 of 5." in err
    proxy.fail_posts = 0
    assert _publish(validated, tagged_repo) == 0
    assert {p.name: sha256_of(p) for p in index.root.iterdir()} == _dists(validated)


@pytest.mark.usefixtures("fast_retries")
def test_an_index_refusing_the_upload_is_not_retried_one_saying_429_is(
    validated: Path,
    tagged_repo: Path,
    flaky_testpypi: tuple[FlakyIndex, EmbeddedIndex],
    capsys: pytest.CaptureFixture[str],
) -> None:
    proxy, index = flaky_testpypi
    proxy.fail_status, proxy.fail_posts = 403, 1000
    assert _publish(validated, tagged_repo) == 1
    err = capsys.readouterr().err
    assert f"was refused: HTTPError: 403 Forbidden from {proxy.url}/; not retried (a refusal does not heal)" in err
    assert [method for method, _ in proxy.requests].count("POST") == 1, "neither twine nor cuda-ci asked again"
    assert "retry" not in err.lower() and not list(index.root.iterdir())

    proxy.fail_status, proxy.fail_posts = 429, 1
    assert _publish(validated, tagged_repo) == 0
    err = capsys.readouterr().err
    assert "HTTPError: 429 Too Many Requests" in err and "; retry 1 of 3 in" in err
    assert {p.name: sha256_of(p) for p in index.root.iterdir()} == _dists(validated)


@pytest.mark.usefixtures("fast_retries")
def test_a_connection_dropped_mid_publish_resumes_without_uploading_twice(
    validated: Path, tagged_repo: Path, flaky_testpypi: tuple[FlakyIndex, EmbeddedIndex]
) -> None:
    proxy, index = flaky_testpypi
    proxy.drop_after = 1
    assert _publish(validated, tagged_repo) == 1
    assert len(list(index.root.iterdir())) == 1, "the first file made it before the drop"
    proxy.drop_after = None
    forwarded_before = proxy.uploads_forwarded
    assert _publish(validated, tagged_repo) == 0
    assert proxy.uploads_forwarded - forwarded_before == len(_dists(validated)) - 1, "only the missing file"
    assert {p.name: sha256_of(p) for p in index.root.iterdir()} == _dists(validated)


def test_a_same_named_file_with_another_hash_is_refused_showing_both(
    validated: Path,
    tagged_repo: Path,
    flaky_testpypi: tuple[FlakyIndex, EmbeddedIndex],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, index = flaky_testpypi
    wheel = next((validated / "dist").glob("*.whl"))
    (index.root / wheel.name).write_bytes(wheel.read_bytes() + b"different")
    assert _publish(validated, tagged_repo) == 1
    err = capsys.readouterr().err
    assert sha256_of(index.root / wheel.name) in err and sha256_of(wheel) in err
    assert "nothing was uploaded" in err
    assert sorted(p.name for p in index.root.iterdir()) == [wheel.name]


def test_published_means_served_and_the_install_back_runs_apart_from_the_upload(
    validated: Path,
    tagged_repo: Path,
    flaky_testpypi: tuple[FlakyIndex, EmbeddedIndex],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An index that lists the upload but serves other bytes under its name fails the target, naming
    the file, the index and both hashes; the upload job installs nothing back, the next job (without
    any token) only checks what is served and installs back."""
    proxy, index = flaky_testpypi
    wheel = next((validated / "dist").glob("*.whl"))
    other = wheel.read_bytes()[:-18] + b"not what was built"  # the same size, other bytes
    proxy.serve_instead = {wheel.name: other}
    upload = ["publish", "--release-dir", str(validated), "--target", "testpypi", "--repo", str(tagged_repo)]
    assert main([*upload, "--no-install-back"]) == 1
    err = capsys.readouterr().err
    served = hashlib.sha256(other).hexdigest()
    assert f"error: {wheel.name}: testpypi ({proxy.url}/simple/) serves bytes with sha256 {served}" in err
    assert f"but the release's file has sha256 {sha256_of(wheel)}" in err
    assert "error: publish --target testpypi is not done: testpypi does not serve the release as built" in err
    assert {p.name: sha256_of(p) for p in index.root.iterdir()} == _dists(validated), "the upload itself went out"

    proxy.serve_instead = {}
    assert main([*upload, "--no-install-back"]) == 0
    assert "testpypi: nothing to do\n" in capsys.readouterr().out, "nothing uploaded again, nothing installed"
    monkeypatch.delenv("CUDA_CI_TESTPYPI_TOKEN")  # the install-back job holds no credential
    assert main([*upload, "--install-back-only"]) == 0
    assert "testpypi: done, installed back" in capsys.readouterr().out
    actions = [e["action"] for e in json.loads((validated / "publish-log.json").read_text())["entries"]]
    assert actions.count("verified-served") == 2 and actions.count("verified-install") == 1


def test_two_releases_of_one_tag_never_run_at_once(tagged_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with release_lock(Git.open(tagged_repo), TAG):
        code = main(["release", "--tag", TAG, "--dry-run", "--repo", str(tagged_repo), "--out", str(tagged_repo / "x")])
    assert code == 1
    assert f"another cuda-ci release of {TAG} is running (pid" in capsys.readouterr().err
    assert not (tagged_repo / "x").exists()


def _spy_subprocesses(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    seen: list[list[str]] = []
    real_run, real_popen = subprocess.run, subprocess.Popen

    def run(args: Any, *a: Any, **k: Any) -> Any:
        seen.append([str(x) for x in args])
        return real_run(args, *a, **k)

    class Popen(real_popen):  # type: ignore[misc,valid-type]
        def __init__(self, args: Any, *a: Any, **k: Any) -> None:
            seen.append([str(x) for x in args])
            super().__init__(args, *a, **k)

    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setattr(subprocess, "Popen", Popen)
    return seen


@pytest.mark.parametrize("command", ["release", "build", "preflight"])
@pytest.mark.parametrize("tag", [*[t for t in GARBAGE if t.strip()][:24], "", " "], ids=lambda t: repr(t)[:30])
def test_bad_tags_are_refused_before_anything_runs(
    tagged_repo: Path, command: str, tag: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen = _spy_subprocesses(monkeypatch)
    out = tagged_repo / ".release" / "bad"
    args = [command, f"--tag={tag}", "--repo", str(tagged_repo)]
    args += ["--out", str(out)] if command != "preflight" else []
    args += ["--dry-run"] if command != "build" else []
    assert main(args) == 2, "a tag that is not a release tag is a usage error for every command"
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err
    assert "is not a release tag" in err or "releases" in err
    assert not out.exists(), "nothing built"
    for argv in seen:
        assert not tag.strip() or tag not in argv, f"the tag reached a subprocess: {argv}"


def test_another_units_tag_and_a_blob_tag(tagged_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--tag=v13.0.0", "--component=cuda-core", "--repo", str(tagged_repo)]) == 2
    assert "releases cuda-bindings, not cuda-core" in capsys.readouterr().err
    blob = git(tagged_repo, "rev-parse", "HEAD:cuda_core/README.md")
    git(tagged_repo, "tag", "cuda-core-v9.9.9", blob)
    assert main(["build", "--tag", "cuda-core-v9.9.9", "--repo", str(tagged_repo)]) == 1
    assert "tag cuda-core-v9.9.9 names a blob, not a commit" in capsys.readouterr().err


def test_out_that_is_a_file_is_refused(tagged_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "a-file"
    target.write_text("x")
    assert main(["build", "--tag", TAG, "--repo", str(tagged_repo), "--out", str(target)]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err


def _scan_for_tokens(texts: list[str], folder: Path, tokens: dict[str, str] | None = None) -> list[str]:
    tokens = {**TOKENS, **URL_SECRETS} if tokens is None else tokens
    found = [name for name, token in tokens.items() for text in texts if token in text]
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{name} in {path}" for name, token in tokens.items() if token.encode() in data]
    return found


def _spy_environments(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], dict[str, str]]]:
    """Every subprocess started (``subprocess.run`` included), with the environment it got."""
    seen: list[tuple[list[str], dict[str, str]]] = []
    real_popen = subprocess.Popen

    class Popen(real_popen):  # type: ignore[misc,valid-type]
        def __init__(self, args: Any, *a: Any, **k: Any) -> None:
            env = k.get("env")
            seen.append(([str(x) for x in args], dict(os.environ if env is None else env)))
            super().__init__(args, *a, **k)

    monkeypatch.setattr(subprocess, "Popen", Popen)
    toolenvs.interpreter_id.cache_clear()  # asked once per process: ask again where the spy sees it
    return seen


@pytest.mark.usefixtures("fast_retries")
def test_tokens_appear_nowhere(
    tagged_repo: Path,
    tmp_path: Path,
    index_pair: dict[str, EmbeddedIndex],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    head = git(tagged_repo, "rev-parse", "HEAD")
    started = _spy_environments(monkeypatch)  # from here on, only cuda-ci starts subprocesses
    github = FakeGitHub(token=TOKENS["GITHUB_TOKEN"]).start()
    try:
        api_url = _with_userinfo(github.api_url, URL_SECRETS["GITHUB_API_URL"])
        for key, value in {**TOKENS, "GITHUB_API_URL": api_url, "GITHUB_REPOSITORY": github.repository}.items():
            monkeypatch.setenv(key, value)
        for name, index in index_pair.items():
            simple = _with_userinfo(index.simple_url, URL_SECRETS[f"CUDA_CI_{name.upper()}_SIMPLE_URL"])
            monkeypatch.setenv(f"CUDA_CI_{name.upper()}_UPLOAD_URL", index.upload_url)
            monkeypatch.setenv(f"CUDA_CI_{name.upper()}_SIMPLE_URL", simple)
        texts: list[str] = []
        # A failing preflight (no CI run yet), with --debug so tracebacks would show too.
        assert main(["release", "--tag", TAG, "--repo", str(tagged_repo), "--out", str(tmp_path / "r"), "--debug"]) == 1
        texts.append(str(capsys.readouterr()))
        github.add_run(head)
        # A failing publish: the uploads host refuses every asset.
        github.uploads_allowed = 0
        assert main(["release", "--tag", TAG, "--repo", str(tagged_repo), "--out", str(tmp_path / "r"), "--debug"]) == 1
        texts.append(str(capsys.readouterr()))
        github.uploads_allowed = None
        # The same release, resumed to the end.
        assert main(["publish", "--release-dir", str(tmp_path / "r"), "--repo", str(tagged_repo), "--debug"]) == 0
        texts.append(str(capsys.readouterr()))
    finally:
        github.stop()
    assert github.release(TAG)["draft"] is False
    assert _scan_for_tokens(texts, tmp_path / "r") == []
    # No subprocess gets a token, except twine uploading to an index: that index's, as TWINE_PASSWORD.
    uploads = 0
    for argv, env in started:
        secrets = {**TOKENS, **URL_SECRETS}
        seen = {name for name, token in secrets.items() if any(token in value for value in [*env.values(), *argv])}
        if "twine" in argv and "upload" in argv:
            uploads += 1
            url = argv[argv.index("--repository-url") + 1]
            index = next(name for name, i in index_pair.items() if i.upload_url == url)
            assert seen == {f"CUDA_CI_{index.upper()}_TOKEN"}, argv
            assert env["TWINE_PASSWORD"] == TOKENS[f"CUDA_CI_{index.upper()}_TOKEN"]
        else:
            assert seen == set(), f"{' '.join(argv[:4])} was started with {sorted(seen)}"
    assert uploads >= 2 and len(started) > 20, "the spy saw the release's subprocesses"


@pytest.mark.usefixtures("fast_retries")
def test_credentials_in_index_urls_are_used_but_never_shown_or_passed_on(
    validated: Path,
    tagged_repo: Path,
    index_pair: dict[str, EmbeddedIndex],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``http://__token__:pypi-...@host/legacy/`` and no token variable: the URL's password is the
    upload's, twine alone gets it (as TWINE_PASSWORD), and no output (``--debug`` tracebacks
    included), argument, file or other subprocess's environment ever holds it."""
    upload_secret, simple_secret = "pypi-DistinctiveUploadUrlPassword55", "DistinctiveSimplePassword66"
    secrets = {"upload URL": upload_secret, "simple URL": simple_secret}
    index = index_pair["testpypi"]
    monkeypatch.delenv("CUDA_CI_TESTPYPI_TOKEN", raising=False)
    started = _spy_environments(monkeypatch)
    texts = []
    # An index out of reach first, with --debug: a traceback is printed, and names the real problem.
    monkeypatch.setenv("CUDA_CI_TESTPYPI_UPLOAD_URL", _with_userinfo("http://127.0.0.1:9/legacy/", upload_secret))
    monkeypatch.setenv("CUDA_CI_TESTPYPI_SIMPLE_URL", _with_userinfo("http://127.0.0.1:9/simple/", simple_secret))
    assert _publish(validated, tagged_repo) == 1
    assert main(["publish", "--release-dir", str(validated), "--target", "testpypi", "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "Connection refused" in err and "Name or service not known" not in err, err
    # Publish's first request to the index: the release's age for the upload window (PyPI's JSON API).
    assert "http://127.0.0.1:9/pypi/cuda-pathfinder/1.0.0/json" in err
    texts.append(err)
    # The same credentials on a reachable index: used, and the release goes up.
    monkeypatch.setenv("CUDA_CI_TESTPYPI_UPLOAD_URL", _with_userinfo(index.upload_url, upload_secret, "__token__"))
    monkeypatch.setenv("CUDA_CI_TESTPYPI_SIMPLE_URL", _with_userinfo(index.simple_url, simple_secret))
    assert main(["publish", "--release-dir", str(validated), "--target", "testpypi", "--debug"]) == 0
    texts.append(str(capsys.readouterr()))
    assert sorted(p.name for p in index.root.iterdir()) == sorted(_dists(validated))
    assert _scan_for_tokens(texts, validated, secrets) == []
    uploads = 0
    for argv, env in started:
        seen = {name for name, secret in secrets.items() if any(secret in v for v in [*env.values(), *argv])}
        if "twine" in argv and "upload" in argv and env.get("TWINE_PASSWORD") == upload_secret:
            uploads += 1
            assert env["TWINE_USERNAME"] == "__token__"
            assert not any(upload_secret in a for a in argv)
            seen.discard("upload URL")  # as TWINE_PASSWORD, checked above
        assert seen == set(), f"{' '.join(argv[:4])} was started with {sorted(seen)}"
    assert uploads >= 1


def test_a_dry_run_writes_to_no_release_surface(
    tagged_repo: Path, tmp_path: Path, github_env: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    github_env.add_run(git(tagged_repo, "rev-parse", "HEAD"))
    servers = {name: RecordingServer().start() for name in ("testpypi", "pypi")}
    try:
        for name, server in servers.items():
            monkeypatch.setenv(f"CUDA_CI_{name.upper()}_UPLOAD_URL", server.url + "/legacy/")
            monkeypatch.setenv(f"CUDA_CI_{name.upper()}_SIMPLE_URL", server.url + "/simple/")
            monkeypatch.setenv(f"CUDA_CI_{name.upper()}_TOKEN", f"pypi-never-used-{name}")
        started = _spy_environments(monkeypatch)
        assert (
            main(["release", "--tag", TAG, "--dry-run", "--repo", str(tagged_repo), "--out", str(tmp_path / "r")]) == 0
        )
    finally:
        for server in servers.values():
            server.stop()
    secrets = ["pypi-never-used-", os.environ["GITHUB_TOKEN"]]
    given = [argv[:4] for argv, env in started if any(t in v for t in secrets for v in env.values())]
    assert given == [], "a dry-run hands no token to any subprocess (pypiservers and twine included)"
    assert any("pypiserver" in argv for argv, _ in started), "the spy saw the embedded indexes start"
    assert github_env.writes == [], "a dry-run never writes to GitHub"
    assert {m for m, _ in github_env.requests} == {"GET"}
    assert servers["testpypi"].requests == [] and servers["pypi"].requests == []
    manifest = json.loads((tmp_path / "r" / "release-manifest.json").read_text())
    assert manifest["ci_gate"]["status"] == "verified", "a dry-run still reads what it may"
