"""The CLI reference, ``docs/cli.md``, generated from ``cuda-ci``'s own parser so that it cannot drift:
``python -m cuda_ci.cli.reference > docs/cli.md`` (a test fails when the committed file is not its output)."""

from __future__ import annotations

import argparse
import functools

from cuda_ci.cli.flags import DEPRECATED_ALIASES, build_parser

REGENERATE = "python -m cuda_ci.cli.reference > docs/cli.md"

INTRO = f"""\
<!-- Generated from cuda-ci's parser by `{REGENERATE}`; do not edit (a test fails when it is stale). -->
# The `cuda-ci` command line

[← README](../README.md) · terms: [glossary](glossary.md) · environment: [settings](settings.md) ·
what a folder holds: [release folder](release-folder.md)

`cuda-ci COMMAND [flags]`, from the repository's root or with `--repo PATH`. Every command takes
`--repo`, `--debug` and `--json`.

```bash
cuda-ci release --tag v13.1.0 --dry-run              # the whole path; publishes to embedded indexes
cuda-ci release --tag v13.1.0                        # the real thing: GitHub draft, TestPyPI, PyPI, un-draft
cuda-ci release --snapshot --component cuda-core     # any commit, no tag: a dev version, always a dry-run
cuda-ci release --tag v13.1.0 --dry-run --rehearse   # before tagging: main's head built as if v13.1.0 named it
cuda-ci publish --release-dir .release/v13.1.0 --target github --json   # one target, its result as JSON
```

- **Exit codes**: 0 success; 1 a failed check, each problem an `error:` line on stderr that names
  what is wrong and the fix; 2 a usage error. No traceback unless `--debug`.
- **`--json`**: stdout holds one JSON document, also when the command fails (not when its flags
  do not parse): `schema` (1), `command`, `status` (`succeeded` or `failed`), `errors` (each
  `message`, and the `file` and `line` it points at where it points at one), `stages` (seconds per
  stage), then the command's own fields. Each command's document is described by a JSON Schema,
  `dagger/src/cuda_ci/schemas/<command>.schema.json` (the envelope and shared parts:
  `result.schema.json`); the tests check the documents of real runs against them.
- **On a terminal**: live progress, one line per running stage and long child process (its time
  and latest output line); `NO_COLOR` turns colours off. Elsewhere the output is plain lines, and a
  child's output shows when it fails (or always with `--debug`).
- **On GitHub Actions** (`GITHUB_ACTIONS=true`): every secret is masked (`::add-mask::`) before
  anything is printed; each stage is a `::group::` with long children's output (cibuildwheel, the
  builds, Sphinx, the tests) streamed live inside; every problem is an `::error` annotation and
  every warning a `::warning` one, on the file and line it points at (release notes, a
  `pyproject.toml` declaration, a workflow); each command appends its result to the job summary
  (`GITHUB_STEP_SUMMARY`: artifacts with sizes and sha256, stage times, the CI gate and its run,
  per publish target what was uploaded or found already there, with links, the checks); `release`,
  `build` and `publish` write step outputs (`GITHUB_OUTPUT`): `release-dir`, `component`, `tag`,
  `version`, `version-<distribution>` per distribution and `distributions` (a JSON object). See
  [workflows](workflows.md).
"""


def _value(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if action.choices is not None:
        return " \\| ".join(f"`{choice}`" for choice in action.choices)
    return f"`{action.metavar or action.dest.upper()}`"


def _default(action: argparse.Action) -> str:
    if action.nargs == 0 or action.default in (None, [], argparse.SUPPRESS) or action.required:
        return "required" if action.required else ""
    return f"`{action.default}`"


def _table(actions: list[argparse.Action]) -> list[str]:
    rows = ["| flag | value | default | what |", "| --- | --- | --- | --- |"]
    for action in actions:
        flags = ", ".join(f"`{flag}`" for flag in action.option_strings)
        what = (action.help or "").replace("|", "\\|")
        more = " (repeatable)" if isinstance(action, argparse._AppendAction) else ""
        rows.append(f"| {flags} | {_value(action)} | {_default(action)} | {what}{more} |")
    return [*rows, ""]


def _command(name: str, parser: argparse.ArgumentParser) -> list[str]:
    parser.formatter_class = functools.partial(argparse.HelpFormatter, width=10_000)
    usage = parser.format_usage().removeprefix("usage: ").strip().replace("[-h] ", "")
    old = [alias for alias, new in DEPRECATED_ALIASES.items() if new == name]
    lines = [f"## cuda-ci {name}", "", parser.description or "", "", f"`{usage}`", ""]
    lines += [f"Also accepted, deprecated: {', '.join(f'`cuda-ci {alias}`' for alias in old)}.", ""] if old else []
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.option_strings and not isinstance(a, argparse._HelpAction)]
        if not actions:
            continue
        if group.title not in ("options", "optional arguments"):
            lines += [f"**{group.title}**", ""]
        lines += _table(actions)
    return lines


def render() -> str:
    """The whole reference, in the parser's order of commands."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in sub._choices_actions}
    commands = {name: p for name, p in sub.choices.items() if name not in DEPRECATED_ALIASES}
    index = ["| command | what |", "| --- | --- |"]
    index += [f"| [`{name}`](#cuda-ci-{name}) | {helps[name]} |" for name in commands]
    sections = [line for name, p in commands.items() for line in _command(name, p)]
    return "\n".join([INTRO, *index, "", *sections]).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
