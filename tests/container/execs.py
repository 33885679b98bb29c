"""What the container lane decides about a call before podman runs anything: whether the lane knows
the call and every option it carries, an exec's arguments after ``expand`` and the stand-ins, a
secret's value, and the error the engine would raise for a failed exec.

A call or an option the lane does not honour fails the lane, naming it: the lane never runs a
graph it only half understands.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import gql
from dagger._exceptions import QueryErrorValue

import dagger
from tests.dagger_render import Call

WITH_EXEC_OPTIONS = frozenset(
    {"args", "expect", "stdin", "redirectStdout", "redirectStderr", "expand", "useEntrypoint", "noInit"}
)
AS_SERVICE_OPTIONS = frozenset({"args", "expand", "useEntrypoint", "noInit"})
# Every call the lane replays, with the options it honours (the SDK renders only options that differ
# from their defaults, so an option seen here is an option the graph asked for).
KNOWN_CALLS: Mapping[tuple[str, str], frozenset[str]] = {
    ("Query", "container"): frozenset({"platform"}),
    ("Query", "directory"): frozenset(),
    ("Query", "host"): frozenset(),
    ("Query", "cacheVolume"): frozenset({"key"}),
    ("Query", "setSecret"): frozenset({"name", "plaintext"}),
    ("Query", "secret"): frozenset({"uri"}),
    ("Host", "directory"): frozenset({"path", "exclude"}),
    ("Container", "from"): frozenset({"address"}),
    ("Container", "withEnvVariable"): frozenset({"name", "value", "expand"}),
    ("Container", "withWorkdir"): frozenset({"path", "expand"}),
    ("Container", "withMountedCache"): frozenset({"path", "cache"}),
    ("Container", "withSecretVariable"): frozenset({"name", "secret"}),
    ("Container", "withDirectory"): frozenset({"path", "source"}),
    ("Container", "withFile"): frozenset({"path", "source"}),
    ("Container", "withServiceBinding"): frozenset({"alias", "service"}),
    ("Container", "withExposedPort"): frozenset({"port"}),
    ("Container", "withExec"): WITH_EXEC_OPTIONS,
    ("Container", "asService"): AS_SERVICE_OPTIONS,
    ("Container", "directory"): frozenset({"path"}),
    ("Container", "file"): frozenset({"path"}),
    ("Directory", "directory"): frozenset({"path"}),
    ("Directory", "withDirectory"): frozenset({"path", "source"}),
    ("Directory", "withFile"): frozenset({"path", "source"}),
    ("Directory", "withNewFile"): frozenset({"path", "contents"}),
    ("Directory", "file"): frozenset({"path"}),
}


class Unsupported(Exception):
    """A call, an option or a platform the container lane does not run."""


def check_call(call: Call, removed: frozenset[str] = frozenset()) -> None:
    """Refuse a call the lane does not know, or an option of it the lane does not honour."""
    if call.name in removed:
        return
    known = KNOWN_CALLS.get((call.type_name, call.name))
    if known is None:
        raise Unsupported(f"{call.type_name}.{call.name} is not known to the container lane")
    unknown = sorted(set(call.args) - known)
    if unknown:
        raise Unsupported(
            f"{call.type_name}.{call.name} option {', '.join(unknown)} is not honoured by the container lane"
        )


_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def expand(value: str, env: Mapping[str, str]) -> str:
    """``${VAR}`` and ``$VAR`` replaced from the container's environment (unset: empty), as ``expand`` does."""
    return _VARIABLE.sub(lambda m: env.get(m.group(1) or m.group(2), ""), value)


@dataclass(frozen=True)
class Substitutions:
    """What the lane puts in place of what the graph names, where a stand-in image forces it (the
    table is ``STAND_INS`` in conftest.py, and docs/testing.md lists it)."""

    images: Mapping[str, str] = field(default_factory=dict)
    paths: Mapping[str, str] = field(default_factory=dict)  # interpreter paths, also inside an argument
    arguments: Mapping[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)  # consecutive arguments
    removed_calls: frozenset[str] = frozenset()

    def argv(self, argv: Sequence[str]) -> list[str]:
        replaced = []
        for arg in argv:
            for path, interpreter in self.paths.items():
                arg = arg.replace(path, interpreter)
            replaced.append(arg)
        for run, instead in self.arguments.items():
            for start in range(len(replaced) - len(run) + 1):
                if tuple(replaced[start : start + len(run)]) == run:
                    replaced[start : start + len(run)] = instead
        return replaced

    def image(self, address: str) -> str:
        if address not in self.images:
            raise Unsupported(f"no local stand-in for image {address} (no registry is reachable here)")
        return self.images[address]


def secret_value(secret: list[Call], environ: Mapping[str, str] | None = None) -> str:
    """A secret's plaintext, resolved at the exec that uses it: ``setSecret``'s, or ``env://NAME``
    from the caller's environment, as the engine resolves it from the client's."""
    (call,) = secret
    if call.name == "setSecret":
        return str(call.args["plaintext"])
    uri = str(call.args["uri"])
    scheme, _, name = uri.partition("://")
    if scheme != "env":
        raise Unsupported(f"secret provider {scheme}:// is not known to the container lane")
    environ = os.environ if environ is None else environ
    if name not in environ:
        raise Unsupported(f"secret env://{name}: {name} is not set in the lane's environment")
    return environ[name]


def exec_error(argv: Sequence[str], exit_code: int, stdout: str, stderr: str, expected: str) -> dagger.ExecError:
    """The ``dagger.ExecError`` the SDK raises for a failed exec (its message as the engine words it)."""
    message = f"process {list(argv)!r} did not complete successfully: exit code: {exit_code}"
    if expected == "FAILURE":
        message = f"process {list(argv)!r} was expected to fail but exited with code 0"
    value = QueryErrorValue(
        message=message,
        extensions={
            "_type": "EXEC_ERROR",
            "cmd": list(argv),
            "exitCode": exit_code,
            "stdout": stdout,
            "stderr": stderr,
        },
    )
    error = dagger.QueryError([value], gql.GraphQLRequest("{ container { withExec { sync } } }"))
    assert isinstance(error, dagger.ExecError)
    return error


def failed(exit_code: int, expect: str) -> bool:
    """Whether an exit code fails the exec, given its ``expect`` (SUCCESS, FAILURE or ANY)."""
    if expect == "ANY":
        return False
    return (exit_code != 0) if expect == "SUCCESS" else (exit_code == 0)


@dataclass
class State:
    """A container between calls: its file system so far (an image) and its configuration."""

    image: str
    base: str  # the stand-in the chain started from
    entrypoint: list[str]
    path: str  # the image's PATH, for resolving a bare command
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    caches: dict[str, str] = field(default_factory=dict)  # path -> volume
    secrets: dict[str, list[Call]] = field(default_factory=dict)
    bindings: dict[str, list[Call]] = field(default_factory=dict)
    ports: list[int] = field(default_factory=list)
    pending: list[tuple[str, Path]] = field(default_factory=list)  # laid over before the next step
    last_stdout: str = ""
    last_stderr: str = ""
    last_exit_code: int = 0


def configure(state: State, call: Call) -> None:
    """A call that changes the container's configuration only."""
    name, args = call.name, call.args
    value = str(args.get("value", args.get("path", "")))
    value = expand(value, state.env) if args.get("expand") else value
    if name == "withEnvVariable":
        state.env[args["name"]] = value
    elif name == "withWorkdir":
        state.workdir = posixpath.join(state.workdir, value)
    elif name == "withMountedCache":
        (volume,) = args["cache"]
        state.caches[args["path"]] = volume.args["key"]
    elif name == "withSecretVariable":
        state.secrets[args["name"]] = args["secret"]
    elif name == "withServiceBinding":
        state.bindings[args["alias"]] = args["service"]
    elif name == "withExposedPort":
        state.ports.append(int(args["port"]))
    else:
        raise Unsupported(f"Container.{name} cannot be replayed in the middle of a container")
