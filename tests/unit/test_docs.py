"""The reference pages cannot drift: the CLI page is the parser's, every setting read is documented,
and the README stays a one-page guide whose links lead somewhere."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from cuda_ci.cli import reference as clidoc
from cuda_ci.cli.flags import build_parser, settings_of
from cuda_ci.infra import secrets
from cuda_ci.infra.settings import default_cache_dir
from tests.helpers import REPO_ROOT

DOCS = REPO_ROOT / "docs"
# Pages other branches add; the README links them already.
PENDING = {"docs/security.md", "docs/status.md"}


class RecordingEnviron(Mapping[str, str]):
    """An empty environment that remembers every variable asked for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return False

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        self.asked.add(key)
        return default

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def test_the_cli_reference_is_the_parsers() -> None:
    page = (DOCS / "cli.md").read_text()
    assert page == clidoc.render(), f"docs/cli.md is stale: run `{clidoc.REGENERATE}`"
    for flag in ("--json", "--wheels-only", "--extra-dist", "--from-github", "--dry-run-index", "--rehearse"):
        assert f"`{flag}`" in page


def test_every_setting_read_is_on_the_settings_page() -> None:
    environ = RecordingEnviron()
    settings_of(build_parser().parse_args(["lint"]), environ)
    default_cache_dir(environ, windows=True)
    secrets.register_environment(environ)
    page = (DOCS / "settings.md").read_text()
    assert {"GITHUB_TOKEN", "CUDA_CI_PYPI_UPLOAD_URL", "NO_COLOR", "GITHUB_STEP_SUMMARY"} <= environ.asked
    missing = sorted(name for name in environ.asked if f"`{name}`" not in page)
    assert not missing, f"docs/settings.md does not name {missing}"


def test_the_readme_is_a_short_guide_that_opens_with_the_two_commands() -> None:
    lines = (REPO_ROOT / "README.md").read_text().splitlines()
    assert len(lines) < 150
    block = lines[lines.index("```bash") + 1 : lines.index("```bash") + 3]
    assert block[0].startswith("bash .ci/setup && .venv/bin/cuda-ci release --snapshot --component cuda-pathfinder")
    assert block[1].startswith("bash .ci/run ")


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_slug(h) for h in re.findall(r"^#+ (.+)$", page.read_text(), re.MULTILINE)}


def test_every_link_between_the_pages_leads_to_a_file_and_heading() -> None:
    pages = [REPO_ROOT / "README.md", REPO_ROOT / "dagger" / "README.md", *DOCS.glob("*.md")]
    broken = []
    for page in pages:
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", page.read_text()):
            if re.match(r"[a-z]+://", target):
                continue
            resolved = (page.parent / target).resolve() if target else page
            if str(resolved.relative_to(REPO_ROOT)) in PENDING:
                continue
            if not resolved.exists() or (anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved)):
                broken.append(f"{page.relative_to(REPO_ROOT)} → {target}#{anchor}")
    assert not broken
