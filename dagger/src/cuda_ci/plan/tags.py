"""Release tags: ``<prefix>X.Y.Z[{a|b|rc}N][.postN]``, already in PEP 440 normal form."""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from cuda_ci.infra.components import UNITS, ReleaseUnit, get_unit
from cuda_ci.infra.errors import TagError

_NUMBER = "(?:0|[1-9][0-9]*)"
VERSION_PATTERN = rf"{_NUMBER}\.{_NUMBER}\.{_NUMBER}(?:(?:a|b|rc){_NUMBER})?(?:\.post{_NUMBER})?"
_VERSION_RE = re.compile(VERSION_PATTERN, re.ASCII)
MAX_TAG_LENGTH = 128


@dataclass(frozen=True)
class ReleaseTag:
    """A parsed release tag: its text, its release unit and its version."""

    name: str
    unit: ReleaseUnit
    version: Version

    @property
    def ref(self) -> str:
        """The fully qualified ref, so git never reads the tag as an option or a path."""
        return f"refs/tags/{self.name}"

    @property
    def notes_version(self) -> str:
        """The final version whose notes a release uses: ``aN``/``bN``/``rcN`` and ``.postN`` use ``X.Y.Z``'s."""
        return self.version.base_version


def valid_patterns() -> str:
    lines = [f"  {unit.tag_prefix}X.Y.Z   ({' + '.join(unit.distributions)})" for unit in UNITS]
    examples = ", ".join(
        f"{unit.tag_prefix}1.0.0{suffix}" for unit, suffix in zip(UNITS, ("", "rc1", ".post1"), strict=False)
    )
    return (
        "valid release tags are:\n"
        + "\n".join(lines)
        + "\n  X.Y.Z are numbers without leading zeros, optionally followed by aN, bN or rcN"
        f" and/or .postN, in PEP 440 normal form (e.g. {examples})"
    )


def shown(text: str) -> str:
    """A value safe to print: repr'd (no control characters) and cut to a readable length."""
    return repr(text) if len(text) <= 80 else repr(text[:60]) + f"... ({len(text)} characters)"


def tag_name(unit: ReleaseUnit, version: Version | str) -> str:
    return f"{unit.tag_prefix}{version}"


def parse_tag(tag: str, component: str | None = None) -> ReleaseTag:
    """Parse a release tag; ``component`` (a unit name) must match it when given.

    Raises:
        TagError: the tag is not a canonical release tag (the message lists the valid patterns),
            or it belongs to another unit than ``component``.
    """
    expected = get_unit(component) if component else None
    if len(tag) > MAX_TAG_LENGTH or not tag.isascii():
        raise TagError(f"tag {shown(tag)} is not a release tag\n{valid_patterns()}")
    # Longest prefix first: "v" is a suffix of every other prefix.
    for unit in sorted(UNITS, key=lambda u: -len(u.tag_prefix)):
        if not tag.startswith(unit.tag_prefix):
            continue
        text = tag[len(unit.tag_prefix) :]
        if not _VERSION_RE.fullmatch(text):
            break
        try:
            version = Version(text)
        except InvalidVersion:
            break
        if str(version) != text:
            break
        if expected is not None and expected is not unit:
            raise TagError(
                f"tag {shown(tag)} releases {unit.name}, not {expected.name}: "
                f"{expected.name} tags look like {expected.tag_prefix}X.Y.Z"
            )
        return ReleaseTag(name=tag, unit=unit, version=version)
    raise TagError(f"tag {shown(tag)} is not a release tag{_did_you_mean(tag)}\n{valid_patterns()}")


def canonical_form(tag: str) -> str | None:
    """The release tag a near miss means, in canonical form (``v13.0.0-rc1`` → ``v13.0.0rc1``,
    ``V13.01.0`` → ``v13.1.0``), or None where there is none."""
    lowered = tag.strip().lower()
    for unit in sorted(UNITS, key=lambda u: -len(u.tag_prefix)):
        if not lowered.startswith(unit.tag_prefix):
            continue
        try:
            version = str(Version(lowered[len(unit.tag_prefix) :]))
        except InvalidVersion:
            return None
        canonical = f"{unit.tag_prefix}{version}"
        return canonical if _VERSION_RE.fullmatch(version) and canonical != tag else None
    return None


def _did_you_mean(tag: str) -> str:
    canonical = canonical_form(tag) if len(tag) <= MAX_TAG_LENGTH and tag.isascii() else None
    return f": did you mean {canonical}?" if canonical else ""
