"""What a component declares in its own ``pyproject.toml``, read where the ecosystem puts it.

- Dependency groups (PEP 735, ``include-group`` resolved by PyPA's ``dependency-groups``): ``docs`` is
  what the Sphinx environment holds, ``test`` what ``cuda-ci test`` installs beside the built wheels.
- ``[tool.cuda-ci] install-extras``: the extras of ``[project.optional-dependencies]`` every install
  of this run's files asks for (no standard place says which extra an install check should use).
- ``[tool.cuda-ci.variants]``: builds of one wheel merged into it (see :mod:`cuda_ci.build.variants`).
- ``[tool.cuda-ci] wheel-size-budget``: the most one of its wheels may weigh, e.g. ``"2 MiB"``
  (validate refuses a wheel over it; see :mod:`cuda_ci.build.hygiene`).

Bad declarations are refused before anything is built, each naming the file, the group and the fix.
"""

from __future__ import annotations

import functools
import re
import tarfile
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dependency_groups import DependencyGroupInclude, DependencyGroupResolver
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from cuda_ci.build.hygiene import BUDGET_KEY, SizeBudget, parse_size
from cuda_ci.build.variants import Variants, parse_variants
from cuda_ci.infra.components import COMPONENTS, Component, ReleaseUnit
from cuda_ci.infra.errors import CudaCiError, Location, Problem, UsageError
from cuda_ci.infra.git import Git

DOCS_GROUP = "docs"
TEST_GROUP = "test"
DEFAULT_DOCS = ("sphinx>=7",)  # a component without a docs group: plain Sphinx, as before groups
DEFAULT_TEST = ("pytest",)
COMPONENT_NAMES = frozenset(canonicalize_name(c.distribution) for c in COMPONENTS)


def sphinx_version_variable(distribution: str) -> str:
    """``SPHINX_<DIST>_VER`` (upstream's conf.py convention): the name upper-cased, ``-`` → ``_``."""
    return f"SPHINX_{distribution.upper().replace('-', '_')}_VER"


def line_of(text: str, table: str, key: str | None = None) -> int | None:
    """The line (from 1) of ``[table]``, or of ``key = ...`` inside it, in a TOML text; the table's line
    where the key is not found there, None without the table (a finding then names the file alone)."""
    lines = text.splitlines()
    header = re.compile(rf"\s*\[\s*{re.escape(table)}\s*\]\s*(#.*)?")
    start = next((i for i, line in enumerate(lines) if header.fullmatch(line)), None)
    if start is None:
        return None
    entry = re.compile(rf"\s*[\"']?{re.escape(key)}[\"']?\s*=") if key else None
    for number, line in enumerate(lines[start + 1 :], start + 2):
        if line.lstrip().startswith("["):
            break
        if entry is not None and entry.match(line):
            return number
    return start + 1


def _where(file: str | None, text: str, table: str, key: str | None = None) -> Location | None:
    return Location(file, line_of(text, table, key)) if file else None


@dataclass(frozen=True)
class Declared:
    """One component's declarations; ``source`` names its pyproject.toml in messages, ``file`` is that
    file in the repository (None for one read from an sdist), ``text`` its contents (for line numbers)."""

    source: str
    groups: Mapping[str, Any] = field(default_factory=dict)
    optional: frozenset[str] = frozenset()
    install_extras: tuple[str, ...] = ()
    variants: Variants | None = None  # [tool.cuda-ci.variants]: builds merged into one wheel
    wheel_size_budget: SizeBudget | None = None
    dependencies: tuple[str, ...] = ()  # [project] dependencies
    extra_requirements: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # by canonical extra name
    file: str | None = None
    text: str = field(default="", repr=False)

    @classmethod
    def parse(cls, text: str, source: str, file: str | None = None) -> Declared:
        at = functools.partial(_where, file, text)
        whole = Location(file) if file else None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise CudaCiError(f"{source} is not valid TOML ({error}): fix the file", location=whole) from None
        groups = data.get("dependency-groups", {})
        if not isinstance(groups, dict):
            problem = f"{source}: [dependency-groups] must be a table of lists (PEP 735)"
            raise CudaCiError(problem, location=at("dependency-groups"))
        table = _table(_table(data, "tool", source), "cuda-ci", source, "tool.")
        extras = table.get("install-extras", [])
        if not isinstance(extras, list) or not all(isinstance(e, str) for e in extras):
            problem = f'{source}: [tool.cuda-ci] install-extras must be a list of extra names, e.g. ["cu13"]'
            raise CudaCiError(problem, location=at("tool.cuda-ci", "install-extras"))
        project = _table(data, "project", source)
        optional = _table(project, "optional-dependencies", source, "project.")
        try:
            variants = parse_variants(table.get("variants"), source)
            budget = parse_size(table[BUDGET_KEY], source) if BUDGET_KEY in table else None
        except CudaCiError as error:
            raise CudaCiError(*error.problems, location=at("tool.cuda-ci")) from None
        return cls(
            source=source,
            groups=groups,
            optional=frozenset(canonicalize_name(str(name)) for name in optional),
            dependencies=_strings(project.get("dependencies", []), source, "project.dependencies"),
            extra_requirements={
                canonicalize_name(str(k)): _strings(v, source, f"project.optional-dependencies.{k}")
                for k, v in optional.items()
            },
            install_extras=tuple(extras),
            variants=variants,
            wheel_size_budget=budget,
            file=file,
            text=text,
        )

    def at(self, table: str, key: str | None = None) -> Location | None:
        """Where a declaration is, for a finding about it (None for a file that is not in the repository)."""
        return _where(self.file, self.text, table, key)

    @functools.cached_property
    def _groups(self) -> GroupWalker:
        return GroupWalker(self.groups)

    @functools.cached_property
    def _group_names(self) -> frozenset[str]:
        return frozenset(canonicalize_name(str(g)) for g in self.groups)

    def has_group(self, name: str) -> bool:
        return canonicalize_name(name) in self._group_names

    def group(self, name: str) -> tuple[str, ...]:
        """The requirements of group ``name``, ``include-group`` resolved; refused if it is not declared."""
        if not self.has_group(name):
            declared = ", ".join(sorted(str(g) for g in self.groups)) or "none"
            raise UsageError(
                f"{self.source} declares no dependency group {name!r} (declared: {declared}): "
                f"add it under [dependency-groups] or ask for a declared one",
                location=self.at("dependency-groups"),
            )
        at = self.at("dependency-groups", name)
        try:
            return self._groups.resolve(name)
        except IncludeCycle as error:
            raise CudaCiError(
                f"{self.source}: dependency group {name!r} has an include-group cycle ({error}): "
                "remove one of the include-group entries",
                location=at,
            ) from None
        except IncludesTooDeep as error:
            raise CudaCiError(
                f"{self.source}: dependency group {name!r} {error}: "
                "include the groups you need directly instead of through a chain"
            ) from None
        except LookupError as error:
            raise CudaCiError(
                f"{self.source}: dependency group {name!r} includes a group that is not declared ({error}): "
                "declare it under [dependency-groups] or remove the include-group",
                location=at,
            ) from None
        except InvalidRequirement as error:
            raise CudaCiError(
                f"{self.source}: dependency group {name!r} holds a requirement that does not parse ({error}): "
                "write it as a PEP 508 requirement, e.g. 'sphinx>=7,<8.2'",
                location=at,
            ) from None
        except (ValueError, TypeError) as error:
            raise CudaCiError(
                f"{self.source}: dependency group {name!r} is not a PEP 735 group ({error}): "
                'list requirement strings and {include-group = "NAME"} tables only',
                location=at,
            ) from None

    def install_requirements(self) -> list[Requirement]:
        """What an install of this component with its ``install-extras`` requires (PEP 621)."""
        lines = [*self.dependencies]
        for extra in self.install_extras:
            lines += self.extra_requirements.get(canonicalize_name(extra), ())
        try:
            return [Requirement(line) for line in lines]
        except InvalidRequirement as error:
            raise CudaCiError(
                f"{self.source}: a [project] requirement does not parse ({error}): write it as a PEP 508 "
                "requirement, e.g. 'cuda-pathfinder>=1.0'"
            ) from None

    def optional_group(self, name: str, default: Sequence[str]) -> tuple[str, ...]:
        return self.group(name) if self.has_group(name) else tuple(default)

    def problems(self, wanted: Sequence[str] = ()) -> list[str]:
        """Every group that does not resolve, every asked-for group or install extra that is not declared."""
        found: list[str] = []
        for name in [*(str(g) for g in self.groups), *(w for w in wanted if not self.has_group(w))]:
            try:
                self.group(name)
            except CudaCiError as error:
                found += error.problems
        if len(found) > MAX_PROBLEMS:  # a chain of groups fails once per group: the first few say it
            found[MAX_PROBLEMS:] = [f"{self.source}: and {len(found) - MAX_PROBLEMS} more dependency group problems"]
        for extra in self.install_extras:
            if canonicalize_name(extra) not in self.optional:
                problem = (
                    f"{self.source}: [tool.cuda-ci] install-extras names {extra!r}, which "
                    "[project.optional-dependencies] does not declare: declare the extra or remove it"
                )
                found.append(Problem(problem, self.at("tool.cuda-ci", "install-extras")))
        return found


def _table(data: Mapping[str, Any], key: str, source: str, within: str = "") -> Mapping[str, Any]:
    """``data[key]`` where it is a table (empty where absent); anything else is refused, naming the key."""
    value = data.get(key, {})
    if not isinstance(value, dict):
        kind = _TOML_KINDS.get(type(value), "a value")
        raise CudaCiError(
            f"{source}: {within}{key} is {kind} ({str(value)[:60]!r}), not a table: "
            f"write it as a [{within}{key}] table"
        )
    return value


def _strings(value: Any, source: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise CudaCiError(f'{source}: {key} must be an array of requirement strings (PEP 621), e.g. ["numpy>=2"]')
    return tuple(value)


_TOML_KINDS = {str: "a string", list: "an array", int: "an integer", float: "a float", bool: "a boolean"}


class IncludesTooDeep(ValueError):
    """An include-group chain longer than MAX_INCLUDE_DEPTH."""


class IncludeCycle(ValueError):
    """Groups that include each other; the message is the cycle."""


MAX_INCLUDE_DEPTH = 100  # include-group levels: more is a mistake (or an attack), never a need
MAX_PROBLEMS = 10  # dependency group problems listed per file


class GroupWalker:
    """Groups' requirements, include-group resolved, each once in first-seen order. PyPA's
    ``dependency-groups`` parses each group (``lookup``); the includes are walked here, each group
    once (memoized) and at most MAX_INCLUDE_DEPTH deep, as the library's own walk recurses once per
    level (a long chain overflows the stack) and repeats a shared group once per path (diamonds
    grow exponentially).

    ``resolve`` raises the library's errors for a group that does not parse, :class:`IncludeCycle`
    for a cycle and :class:`IncludesTooDeep` for a chain too long."""

    def __init__(self, groups: Mapping[str, Any]) -> None:
        self._resolver = DependencyGroupResolver(groups)
        self._done: dict[str, tuple[str, ...]] = {}

    def resolve(self, name: str) -> tuple[str, ...]:
        return self._walk(name, {})

    def _walk(self, group: str, path: dict[str, None]) -> tuple[str, ...]:
        """``path``: the groups whose includes lead here (an ordered set, changed in place: no copies)."""
        key = canonicalize_name(group)
        if key in path:
            raise IncludeCycle(" -> ".join([*path, key]))
        if len(path) >= MAX_INCLUDE_DEPTH:
            raise IncludesTooDeep(f"includes groups more than {MAX_INCLUDE_DEPTH} levels deep (at {group!r})")
        if key not in self._done:
            found: dict[str, None] = {}
            path[key] = None
            try:
                for item in self._resolver.lookup(group):
                    if isinstance(item, DependencyGroupInclude):
                        found.update(dict.fromkeys(self._walk(item.include_group, path)))
                    else:
                        found[str(item)] = None
            finally:
                del path[key]
            self._done[key] = tuple(found)
        return self._done[key]


def declared_at(git: Git, commit: str, component: Component) -> Declared:
    source = f"{component.dir}/pyproject.toml"
    text = git.show(commit, source)
    return Declared(source=source, file=source) if text is None else Declared.parse(text, source, source)


def declared_in_sdist(sdist: Path) -> Declared:
    """The declarations inside a release's sdist (``<name>-<version>/pyproject.toml``)."""
    top = sdist.name.removesuffix(".tar.gz")
    source = f"{sdist.name}:pyproject.toml"
    try:
        with tarfile.open(sdist, "r:gz") as archive:
            member = archive.getmember(f"{top}/pyproject.toml")
            handle = archive.extractfile(member) if member.isfile() else None
            text = handle.read().decode("utf-8") if handle else None
    except (KeyError, OSError, tarfile.TarError, UnicodeDecodeError):
        text = None
    return Declared(source=source) if text is None else Declared.parse(text, source)


def check_unit(git: Git, commit: str, unit: ReleaseUnit, groups: Sequence[str] = ()) -> dict[str, Declared]:
    """Every component's declarations at ``commit``, refused (all problems at once) before any build."""
    found = {c.distribution: declared_at(git, commit, c) for c in unit.components}
    problems = [p for d in found.values() for p in d.problems()]
    missing = [g for g in groups if not any(d.has_group(g) for d in found.values())]
    for name in missing:
        problems.append(
            f"--group {name}: no component of {unit.name} declares the dependency group {name!r} "
            f"(in {', '.join(d.source for d in found.values())}): declare it under [dependency-groups] "
            "or ask for a declared one"
        )
    if problems:
        raise CudaCiError(*problems)
    return found


def is_component(requirement: str) -> bool:
    """Whether ``requirement`` names one of this repository's distributions."""
    return canonicalize_name(Requirement(requirement).name) in COMPONENT_NAMES


def install_extras(dist: Path, unit: ReleaseUnit) -> dict[str, tuple[str, ...]]:
    """The extras each component's install asks for, from the release's own sdists."""
    found: dict[str, tuple[str, ...]] = {}
    for component in unit.components:
        sdist = next(dist.glob(f"{component.project_name}-*.tar.gz"), None)
        if sdist is not None:
            found[component.distribution] = declared_in_sdist(sdist).install_extras
    return found


def docs_requirements(declared: Iterable[Declared]) -> tuple[str, ...]:
    """What the Sphinx environment holds: every component's ``docs`` group (plain Sphinx without one),
    less this repository's own distributions (those come from this run)."""
    wanted = {r: None for d in declared for r in d.optional_group(DOCS_GROUP, DEFAULT_DOCS)}
    return tuple(r for r in wanted if not is_component(r))


def requirements_for_tests(declared: Iterable[Declared], groups: Sequence[str] = ()) -> tuple[str, ...]:
    """What ``cuda-ci test`` installs beside the built wheels: each component's ``test`` group (bare
    pytest without one), plus the groups asked for with ``--group`` (GPU toolkits stay out unless asked)."""
    wanted: dict[str, None] = {}
    for found in declared:
        wanted.update(dict.fromkeys(found.optional_group(TEST_GROUP, DEFAULT_TEST)))
        for name in groups:
            wanted.update(dict.fromkeys(found.group(name) if found.has_group(name) else ()))
    return tuple(wanted)
