"""Git, always with fully qualified refs or after ``--end-of-options``."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cuda_ci.infra.errors import CommandError, UsageError
from cuda_ci.infra.process import capture, clean_environ


@dataclass(frozen=True)
class Git:
    """One repository on disk."""

    root: Path

    @classmethod
    def open(cls, path: Path) -> Git:
        """The repository at ``path``; a usage error when it is none."""
        if not path.is_dir():
            raise UsageError(f"--repo {str(path)!r} does not exist or is not a directory")
        result = _git(path, "rev-parse", "--show-toplevel", check=False)
        if (
            result.returncode != 0
            and _git(path, "rev-parse", "--is-bare-repository", check=False).stdout.strip() == "true"
        ):
            raise UsageError(
                f"--repo {str(path)!r} is a bare repository: cuda-ci builds from a checkout with a working tree "
                "(git clone without --bare)"
            )
        if result.returncode != 0:
            raise UsageError(f"--repo {str(path)!r} is not a git repository (git rev-parse failed)")
        return cls(Path(result.stdout.strip()))

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _git(self.root, *args, check=check)

    def out(self, *args: str) -> str:
        return self.run(*args).stdout.strip()

    def is_shallow(self) -> bool:
        return self.out("rev-parse", "--is-shallow-repository") == "true"

    def object_type(self, ref: str) -> str | None:
        """``commit``, ``tag``, ``tree``, ``blob``, or None when ``ref`` does not exist."""
        result = self.run("cat-file", "-t", "--end-of-options", ref, check=False)
        return result.stdout.strip() if result.returncode == 0 else None

    def peeled_type(self, ref: str) -> str | None:
        """The type of what ``ref`` finally points to, through annotated tags."""
        result = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{}}", check=False)
        if result.returncode != 0:
            return None
        return self.object_type(result.stdout.strip())

    def commit_of(self, ref: str) -> str | None:
        result = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", check=False)
        return result.stdout.strip() if result.returncode == 0 else None

    def head(self) -> str:
        commit = self.commit_of("HEAD")
        if commit is None:
            raise UsageError(f"the repository {self.root} has no commit yet")
        return commit

    def main_ref(self) -> str | None:
        """``main`` if the local branch exists, else ``origin/main``, else None."""
        for short, full in (("main", "refs/heads/main"), ("origin/main", "refs/remotes/origin/main")):
            if self.commit_of(full):
                return short
        return None

    def is_ancestor(self, commit: str, ref: str) -> bool:
        full = "refs/heads/main" if ref == "main" else f"refs/remotes/{ref}"
        return self.run("merge-base", "--is-ancestor", "--end-of-options", commit, full, check=False).returncode == 0

    def uncommitted_changes(self) -> list[str]:
        return [line for line in self.out("status", "--porcelain", "--untracked-files=no").splitlines() if line]

    def show(self, commit: str, path: str) -> str | None:
        result = self.run("show", "--end-of-options", f"{commit}:{path}", check=False)
        return result.stdout if result.returncode == 0 else None

    def commit_time(self, commit: str) -> int:
        return int(self.out("show", "-s", "--format=%ct", "--end-of-options", commit))

    def archive(self, commit: str, prefix: str, destination: Path) -> None:
        self.run(
            "archive", "--format=tar.gz", f"--prefix={prefix}/", "-o", str(destination), "--end-of-options", commit
        )

    @contextmanager
    def worktree(self, commit: str) -> Iterator[Path]:
        """A clean detached checkout of ``commit`` sharing this repository's full history."""
        parent = Path(tempfile.mkdtemp(prefix="cuda-ci-worktree-"))
        path = parent / "src"
        self.run("worktree", "add", "--detach", "--quiet", str(path), commit)
        try:
            yield path
        finally:
            self.run("worktree", "remove", "--force", str(path), check=False)
            shutil.rmtree(parent, ignore_errors=True)
            self.run("worktree", "prune", check=False)


def _git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = clean_environ(GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    try:
        result = capture(["git", "-C", str(cwd), *args], env=env, timeout=300)
    except FileNotFoundError:
        raise CommandError("git", 127, "git is not installed") from None
    if check and result.returncode != 0:
        raise CommandError(f"git {args[0]}", result.returncode, result.stderr)
    return result
