"""Run the Dagger module's own graph in podman: an interpreter of the lazy call chains it builds.

The module's functions build lazy ``Container``/``Directory`` chains; the Dagger engine would run
them. No engine can run here, but podman can, so this runs exactly those chains: each ``from`` a
local image standing in for the pinned one (no registry is reachable), each ``withExec`` a
``podman exec`` in a container holding the chain's state, cache volumes as named podman volumes,
service bindings as containers on a podman network reached by their alias, secrets only as
environment variables of the one exec that needs them. A call this interpreter does not know
fails loudly, so the lane cannot silently drift from what ``main.py`` builds.

What the lane adds that the graph does not say, all of it this machine's needs, not the graph's:
the podman network, the image substitutions, and `.ci/containers.conf` (the machine's CA bundle
in every container, runc, cgroupfs).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pathspec

from tests.dagger_render import Call, render

# Calls that change a container's file system (so they are skipped when starting from a snapshot).
FILESYSTEM_CALLS = {"withExec", "withDirectory", "withFile", "withNewFile"}


class Unsupported(Exception):
    """A step this machine cannot run (another CPU architecture, GPUs)."""


class LaneExecError(Exception):
    """A container's command failed, as ``dagger.ExecError`` reports it."""

    def __init__(self, argv: list[str], exit_code: int, stdout: str, stderr: str) -> None:
        super().__init__(f"{argv} exited with {exit_code}\n{stderr[-4000:]}")
        self.argv, self.exit_code, self.stdout, self.stderr = argv, exit_code, stdout, stderr


@dataclass(frozen=True)
class Podman:
    """podman with the lane's containers.conf."""

    conf: Path

    def __call__(
        self, *args: str, check: bool = True, stdin: bytes | None = None, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        argv = ["podman", *args]
        environ = {**os.environ, "CONTAINERS_CONF": str(self.conf), **(env or {})}
        result = subprocess.run(argv, input=stdin, capture_output=True, env=environ, timeout=1800)
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv[:8])} ... failed ({result.returncode}): {result.stderr.decode()[-2000:]}"
            )
        return result

    def image_exists(self, name: str) -> bool:
        return self("image", "exists", name, check=False).returncode == 0


@dataclass
class _State:
    image: str
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    secrets: dict[str, str] = field(default_factory=dict)
    cid: str = ""
    last_stdout: str = ""


@dataclass
class Lane:
    """One interpreter: images mapped, a network, snapshots of pure prefixes, everything removed at close."""

    podman: Podman
    images: Mapping[str, str]
    network: str
    workdir: Path
    # Environment every exec gets beside the graph's own (the lane's cut of cibuildwheel's selection).
    extra_env: Mapping[str, str] = field(default_factory=dict)
    session: str = field(default_factory=lambda: os.urandom(4).hex())
    containers: list[str] = field(default_factory=list)
    snapshots: dict[str, str] = field(default_factory=dict)
    results: dict[str, Path] = field(default_factory=dict)
    stdouts: dict[str, str] = field(default_factory=dict)
    log: list[list[str]] = field(default_factory=list)

    # --- entry points ----------------------------------------------------------------------
    def stdout(self, container: Any) -> str:
        return self._run_container(render(container)).last_stdout

    def directory(self, directory: Any) -> Path:
        return self._directory(render(directory))

    def exists(self, directory: Any, path: str) -> bool:
        return (self._directory(render(directory)) / path).exists()

    def contents(self, file: Any) -> str:
        return self._file(render(file)).read_text()

    def close(self) -> None:
        for cid in reversed(self.containers):
            self.podman("rm", "-f", "-t", "0", cid, check=False)
        for image in self.snapshots.values():
            self.podman("rmi", "-f", image, check=False)

    # --- directories and files ---------------------------------------------------------------
    def _directory(self, chain: list[Call]) -> Path:
        key = _key(chain)
        if key in self.results:
            return self.results[key]
        if chain[0].name == "container":
            cut = next(i for i, c in enumerate(chain) if c.type_name == "Container" and c.name == "directory")
            result, rest = self._export(chain[:cut], chain[cut].args["path"]), chain[cut + 1 :]
        elif chain[0].name == "host":
            result, rest = self._host_directory(chain[1]), chain[2:]
        elif chain[0].name == "directory":
            result, rest = Path(tempfile.mkdtemp(dir=self.workdir, prefix="dir-")), chain[1:]
        else:
            raise Unsupported(f"directory from {chain[0].name}")
        for call in rest:
            result = self._subdirectory(result, call)
        self.results[key] = result
        return result

    def _subdirectory(self, current: Path, call: Call) -> Path:
        if call.name == "directory":
            return current / call.args["path"]
        if call.name == "withDirectory":
            target = current / call.args["path"]
            shutil.copytree(self._directory(call.args["source"]), target, dirs_exist_ok=True, symlinks=True)
            return current
        raise Unsupported(f"Directory.{call.name}")

    def _host_directory(self, call: Call) -> Path:
        source = Path(call.args["path"])
        spec = pathspec.PathSpec.from_lines("gitignore", call.args.get("exclude", []))
        target = Path(tempfile.mkdtemp(dir=self.workdir, prefix="host-"))
        for path in sorted(source.rglob("*")):
            relative = path.relative_to(source).as_posix()
            if spec.match_file(relative) or any(spec.match_file(p) for p in _parents(relative)):
                continue
            destination = target / relative
            if path.is_dir() and not path.is_symlink():
                destination.mkdir(parents=True, exist_ok=True)
            else:
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, destination, follow_symlinks=False)
        return target

    def _file(self, chain: list[Call]) -> Path:
        key = _key(chain)
        if key not in self.results:
            *prefix, last = chain
            if last.type_name == "Container":
                self.results[key] = self._export(prefix, last.args["path"])
            else:
                self.results[key] = self._directory(prefix) / last.args["path"]
        return self.results[key]

    def _export(self, container: list[Call], path: str) -> Path:
        state = self._run_container(container)
        target = Path(tempfile.mkdtemp(dir=self.workdir, prefix="out-")) / "x"
        self.podman("cp", f"{state.cid}:{path}", str(target))
        return target

    # --- containers ----------------------------------------------------------------------------
    def _run_container(self, chain: list[Call], alias: str | None = None) -> _State:
        if chain[0].name != "container":
            raise Unsupported(f"container from {chain[0].name}")
        if chain[0].args.get("platform") not in (None, "linux/amd64"):
            raise Unsupported(f"platform {chain[0].args['platform']}")
        start, image = self._snapshot_before(chain)
        state = _State(image=image)
        mounts = [c for c in chain if c.name == "withMountedCache"]
        state.cid = self._start(state.image, mounts, alias)
        for index, call in enumerate(chain[1:], start=1):
            if index < start and call.name in FILESYSTEM_CALLS:
                if call.name == "withExec":
                    state.last_stdout = self.stdouts[_key(chain[: index + 1])]
                continue
            self._apply(state, call)
            if call.name == "withExec":
                # As the engine's layer cache: a later chain with this prefix starts from here.
                self.stdouts[_key(chain[: index + 1])] = state.last_stdout
                if not any(c.name == "withServiceBinding" for c in chain[: index + 1]):
                    self._snapshot(chain[: index + 1], state)
        return state

    def _snapshot_before(self, chain: list[Call]) -> tuple[int, str]:
        for end in range(len(chain), 1, -1):
            image = self.snapshots.get(_key(chain[:end]))
            if image:
                return end, image
        address = next(c.args["address"] for c in chain if c.name == "from")
        if address not in self.images:
            raise Unsupported(f"no local stand-in for image {address}")
        return 0, self.images[address]

    def _snapshot(self, prefix: list[Call], state: _State) -> None:
        key = _key(prefix)
        if key not in self.snapshots:
            name = f"localhost/cuda-ci-lane-snapshot:{self.session}-{key[:16]}"
            self.podman("commit", "-q", state.cid, name)
            self.snapshots[key] = name

    def _start(self, image: str, mounts: list[Call], alias: str | None) -> str:
        argv = ["run", "-d", "--network", self.network]
        for mount in mounts:
            argv += ["-v", f"{mount.args['cache'][0].args['key']}:{mount.args['path']}"]
        if alias:
            argv += ["--network-alias", alias]
        cid = self.podman(*argv, "--entrypoint", "sleep", image, "infinity").stdout.decode().strip()
        self.containers.append(cid)
        return cid

    def _apply(self, state: _State, call: Call) -> None:
        name, args = call.name, call.args
        if name in ("from", "withMountedCache", "withExposedPort"):
            return
        if name == "withEnvVariable":
            state.env[args["name"]] = args["value"]
        elif name == "withWorkdir":
            state.workdir = args["path"]
        elif name == "withSecretVariable":
            (secret,) = args["secret"]
            state.secrets[args["name"]] = secret.args["plaintext"]
        elif name == "withDirectory":
            self.podman("exec", state.cid, "mkdir", "-p", args["path"])
            self.podman("cp", f"{self._directory(args['source'])}/.", f"{state.cid}:{args['path']}")
        elif name == "withFile":  # as Dagger does, the parent folders are made
            self.podman("exec", state.cid, "mkdir", "-p", str(PurePosixPath(args["path"]).parent))
            self.podman("cp", str(self._file(args["source"])), f"{state.cid}:{args['path']}")
        elif name == "withServiceBinding":
            self._start_service(args["alias"], args["service"])
        elif name == "withExec":
            self._exec(state, args["args"], args.get("redirectStdout"))
        else:
            raise Unsupported(f"Container.{name} is not known to the container lane")

    def _exec(self, state: _State, argv: list[str], redirect_stdout: str | None) -> None:
        environ = {**self.extra_env, **state.env}
        flags = [f"--env={k}={v}" for k, v in environ.items()] + [f"--env={k}" for k in state.secrets]
        self.log.append(argv)
        result = self.podman("exec", "-w", state.workdir, *flags, state.cid, *argv, check=False, env=state.secrets)
        stdout, stderr = result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace")
        if result.returncode != 0:
            raise LaneExecError(argv, result.returncode, stdout, stderr)
        state.last_stdout = stdout
        if redirect_stdout:
            self.podman("exec", "-i", state.cid, "sh", "-c", 'cat > "$0"', redirect_stdout, stdin=result.stdout)

    def _start_service(self, alias: str, service: list[Call]) -> None:
        (as_service,) = [c for c in service if c.name == "asService"]
        state = self._run_container(service[: service.index(as_service)], alias=alias)
        env = [f"--env={k}={v}" for k, v in {**self.extra_env, **state.env}.items()]
        self.podman("exec", "-d", "-w", state.workdir, *env, state.cid, *as_service.args["args"])
        ports = [c.args["port"] for c in service if c.name == "withExposedPort"]
        probe = "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)"
        deadline = time.monotonic() + 60
        for port in ports:
            while self.podman("exec", state.cid, "python3", "-c", probe, str(port), check=False).returncode != 0:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"service {alias} did not open port {port} within 60 s")
                time.sleep(0.5)


def _parents(relative: str) -> Iterator[str]:
    parts = relative.split("/")
    for end in range(1, len(parts)):
        yield "/".join(parts[:end]) + "/"


def _key(chain: list[Call]) -> str:
    return hashlib.sha256(json.dumps(_plain(chain), sort_keys=True).encode()).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, Call):
        return [value.type_name, value.name, {k: _plain(v) for k, v in value.args.items()}]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@contextmanager
def lane(
    podman: Podman, images: Mapping[str, str], workdir: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[Lane]:
    network = f"cuda-ci-lane-{os.urandom(3).hex()}"
    podman("network", "create", network)
    engine = Lane(podman=podman, images=images, network=network, workdir=workdir, extra_env=extra_env or {})
    try:
        yield engine
    finally:
        engine.close()
        podman("network", "rm", "-f", network, check=False)
