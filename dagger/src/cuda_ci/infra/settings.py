"""One options model, built once by the CLI from an explicit environment mapping and its flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cuda_ci.infra.errors import UsageError
from cuda_ci.infra.secrets import split_credentials

IndexName = Literal["testpypi", "pypi"]

_DEFAULT_INDEXES: dict[IndexName, tuple[str, str]] = {
    "testpypi": ("https://test.pypi.org/legacy/", "https://test.pypi.org/simple/"),
    "pypi": ("https://upload.pypi.org/legacy/", "https://pypi.org/simple/"),
}


@dataclass(frozen=True, kw_only=True)
class IndexSettings:
    """URLs without credentials; credentials given in the upload URL become the upload's (where no
    token variable is set), those in the simple URL are sent only to that index."""

    name: IndexName
    upload_url: str
    simple_url: str
    token: str | None
    username: str = "__token__"
    simple_auth: tuple[str, str] | None = None

    def __repr__(self) -> str:  # never show the token
        return f"IndexSettings(name={self.name!r}, upload_url={self.upload_url!r}, simple_url={self.simple_url!r})"


# PyPI's upload window (warehouse #19727, July 2026): the default of CUDA_CI_UPLOAD_WINDOW_DAYS.
PYPI_UPLOAD_WINDOW_DAYS = 14

CiGateStatus = Literal["verified", "not-verified", "snapshot"]
OIDC_VARIABLES = ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN")


@dataclass(frozen=True, kw_only=True)
class RunnerSettings:
    """What the Dagger module hands to ``cuda-ci`` inside its containers, as command-line flags
    (``--built-by``, ``--prebuilt-wheels``, ``--build-python``, ``--preflight-result``,
    ``--dry-run-index``; see ``cuda-ci <command> --help``). The host CLI leaves them at their defaults."""

    built_by: Literal["host", "dagger"] = "host"
    # Linux wheels already built and repaired per cibuildwheel identifier (in parallel containers).
    prebuilt_wheels: str | None = None
    # The sha256 the wheel jobs of a fanned-out workflow reported for them (``--wheel-reports``).
    wheel_reports: str | None = None
    # The interpreter that builds or smoke-tests wheels (default: the one running cuda-ci).
    build_python: str | None = None
    # Preflight's JSON result (its CI gate, the commit it checked), handed to the build node.
    preflight_result: str | None = None
    # Embedded indexes already running (Dagger services) for a dry-run: name → base URL.
    dry_run_index_urls: Mapping[IndexName, str] | None = None


def default_cache_dir(environ: Mapping[str, str], windows: bool = os.name == "nt") -> Path:
    """``CUDA_CI_CACHE_DIR``, else the platform's user cache folder (``%LOCALAPPDATA%\\cuda-ci\\Cache``,
    ``$XDG_CACHE_HOME/cuda-ci``, ``~/.cache/cuda-ci``): where kept tool environments live."""
    if environ.get("CUDA_CI_CACHE_DIR"):
        return Path(environ["CUDA_CI_CACHE_DIR"])
    if windows:
        return Path(environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "cuda-ci" / "Cache"
    return Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cuda-ci"


@dataclass(frozen=True, kw_only=True)
class ActionsFiles:
    """The files a GitHub Actions runner gives each step: the job summary and the step outputs."""

    step_summary: str | None = None  # GITHUB_STEP_SUMMARY
    output: str | None = None  # GITHUB_OUTPUT


@dataclass(frozen=True, kw_only=True)
class Settings:
    github_api_url: str
    github_repository: str | None
    github_token: str | None
    in_github_actions: bool
    indexes: Mapping[IndexName, IndexSettings]
    runner: RunnerSettings = RunnerSettings()
    # The Actions OIDC variables (trusted publishing, attestations); empty outside Actions.
    oidc: Mapping[str, str] = field(default_factory=dict)
    # CUDA_CI_CONTAINER_ENGINE: where cibuildwheel builds Linux wheels (auto, docker, podman, none).
    container_engine: str = "auto"
    # GITHUB_SERVER_URL: where links to a repository's pages (releases, runs) point.
    github_server_url: str = "https://github.com"
    actions_files: ActionsFiles = ActionsFiles()
    # NO_COLOR (https://no-color.org): set and not empty, nothing is coloured.
    no_color: bool = False
    cache_dir: Path = field(default_factory=lambda: default_cache_dir({}))
    # CUDA_CI_UPLOAD_WINDOW_DAYS: the days after a release's first upload in which TestPyPI and PyPI
    # accept new files for it (PyPI's 14 since July 2026, warehouse #19727); 0 applies no window.
    upload_window_days: int = PYPI_UPLOAD_WINDOW_DAYS

    def __repr__(self) -> str:  # never show a token
        return f"Settings(github_api_url={self.github_api_url!r}, github_repository={self.github_repository!r})"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], runner: RunnerSettings | None = None) -> Settings:
        """The settings of one run, from the environment (``environ``) and the hand-off flags (``runner``)."""
        indexes: dict[IndexName, IndexSettings] = {}
        for name, (upload, simple) in _DEFAULT_INDEXES.items():
            prefix = f"CUDA_CI_{name.upper()}"
            upload_url, upload_auth = split_credentials(environ.get(f"{prefix}_UPLOAD_URL") or upload)
            simple_url, simple_auth = split_credentials(environ.get(f"{prefix}_SIMPLE_URL") or simple)
            token = environ.get(f"{prefix}_TOKEN") or None
            username = "__token__"
            if token is None and upload_auth is not None:
                username, token = upload_auth[0] or username, upload_auth[1] or None
            indexes[name] = IndexSettings(
                name=name,
                upload_url=upload_url,
                simple_url=simple_url,
                token=token,
                username=username,
                simple_auth=simple_auth,
            )
        # GitHub authenticates with the token alone: credentials in GITHUB_API_URL are never sent.
        api_url, _ = split_credentials(environ.get("GITHUB_API_URL") or "https://api.github.com")
        return cls(
            github_api_url=api_url.rstrip("/"),
            github_repository=environ.get("GITHUB_REPOSITORY") or None,
            github_token=environ.get("GITHUB_TOKEN") or environ.get("GH_TOKEN") or None,
            in_github_actions=environ.get("GITHUB_ACTIONS") == "true",
            indexes=indexes,
            runner=runner or RunnerSettings(),
            oidc={k: environ[k] for k in OIDC_VARIABLES if environ.get(k)},
            container_engine=environ.get("CUDA_CI_CONTAINER_ENGINE") or "auto",
            github_server_url=(environ.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/"),
            actions_files=ActionsFiles(
                step_summary=environ.get("GITHUB_STEP_SUMMARY") or None, output=environ.get("GITHUB_OUTPUT") or None
            ),
            no_color=bool(environ.get("NO_COLOR")),
            cache_dir=default_cache_dir(environ),
            upload_window_days=_window_days(environ.get("CUDA_CI_UPLOAD_WINDOW_DAYS")),
        )


def _window_days(text: str | None) -> int:
    if text is None or not text.strip():
        return PYPI_UPLOAD_WINDOW_DAYS
    if not text.strip().isdigit():
        raise UsageError(
            f"CUDA_CI_UPLOAD_WINDOW_DAYS={text!r}: give a whole number of days (14, PyPI's window; 0 applies none)"
        )
    return int(text)
