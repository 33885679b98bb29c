"""A host directory as the Dagger engine loads it: the exclude patterns as BuildKit applies them, and
the content the engine's cache keys follow.

The engine sends a host directory through fsutil's filter, which matches exclude patterns with
moby/patternmatcher (``patternmatcher.go``, ported below for ``/``-separated paths): a pattern is
anchored at the directory's root (``build`` is only the top ``build``), ``**`` spans any number of
folders, ``*`` and ``?`` stay within one, a folder's match covers everything below it, ``!`` marks an
exception, and the last matching pattern wins. This is not gitignore: there, ``build`` matches at
any depth.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shutil
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pattern:
    text: str  # cleaned, without its leading "!"
    exclusion: bool
    kind: str  # exact | prefix | suffix | regexp, as patternmatcher decides
    regexp: re.Pattern[str] | None

    def match(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        assert self.regexp is not None
        return self.regexp.match(path) is not None


def compile_patterns(patterns: Sequence[str]) -> list[Pattern]:
    compiled = []
    for raw in patterns:
        text = raw.strip()
        if not text:
            continue
        text = posixpath.normpath(text)
        exclusion = text.startswith("!")
        if exclusion:
            text = text[1:]
            if not text:
                raise ValueError('illegal exclusion pattern: "!"')
        compiled.append(_compile(text, exclusion))
    return compiled


def _compile(text: str, exclusion: bool) -> Pattern:
    regexp, kind, i = "^", "exact", 0
    while i < len(text):
        char = text[i]
        if char == "*" and text[i + 1 : i + 2] == "*":
            start = i
            i += 2 if text[i + 2 : i + 3] != "/" else 3
            if i >= len(text):
                kind, regexp = ("prefix", regexp) if kind == "exact" else ("regexp", regexp + ".*")
            else:
                regexp, kind = regexp + "(.*/)?", "regexp"
            kind = "suffix" if start == 0 else kind
            continue
        if char == "*":
            regexp, kind = regexp + "[^/]*", "regexp"
        elif char == "?":
            regexp, kind = regexp + "[^/]", "regexp"
        elif char == "\\" and i + 1 < len(text):
            i += 1
            regexp, kind = regexp + re.escape(text[i]), "regexp"
        elif char in "[]":
            regexp, kind = regexp + char, "regexp"
        else:
            regexp += re.escape(char)
        i += 1
    return Pattern(text, exclusion, kind, re.compile(regexp + "$") if kind == "regexp" else None)


def excluded(path: str, patterns: Sequence[Pattern]) -> bool:
    """patternmatcher's ``MatchesOrParentMatches``: ``path`` (relative, ``/``-separated) or one of its
    folders matches, and no later exception takes it back."""
    parts = path.split("/")[:-1]
    parents = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    matched = False
    for pattern in patterns:
        if pattern.exclusion != matched:
            continue
        if pattern.match(path) or any(pattern.match(parent) for parent in parents):
            matched = not pattern.exclusion
    return matched


def kept(root: Path, patterns: Sequence[str]) -> Iterator[tuple[str, Path]]:
    """Every path under ``root`` the engine would load, in a stable order (folders before what they hold)."""
    compiled = compile_patterns(patterns)
    exceptions = any(p.exclusion for p in compiled)
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        base = Path(folder)
        prefix = "" if base == root else base.relative_to(root).as_posix() + "/"
        for name in [*list(dirs), *sorted(files)]:
            if not excluded(prefix + name, compiled):
                yield prefix + name, base / name
        # as fsutil does: an excluded folder is not walked unless an exception may take something back
        dirs[:] = [d for d in dirs if exceptions or not excluded(prefix + d, compiled)]


def content_digest(root: Path, patterns: Sequence[str]) -> str:
    """What the engine's cache key for this host directory follows: names, kinds, modes and contents."""
    digest = hashlib.sha256()
    for relative, path in kept(root, patterns):
        info = path.lstat()
        digest.update(f"{relative}\0{stat.S_IFMT(info.st_mode)}\0{info.st_mode & 0o7777}\0".encode())
        if stat.S_ISLNK(info.st_mode):
            digest.update(os.readlink(path).encode())
        elif stat.S_ISREG(info.st_mode):
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def copy_kept(root: Path, patterns: Sequence[str], target: Path) -> None:
    """The loaded directory, written to ``target``."""
    for relative, path in kept(root, patterns):
        destination = target / relative
        if path.is_dir() and not path.is_symlink():
            destination.mkdir(parents=True, exist_ok=True)
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination, follow_symlinks=False)
