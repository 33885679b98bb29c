"""Run the Dagger module's own graph in podman: an interpreter of the lazy call chains it builds.

The module's functions build lazy ``Container``/``Directory`` chains; the Dagger engine would run
them. No engine can run here, but podman can, so this runs exactly those chains, as the engine
does wherever this machine allows:
- each ``withExec`` runs in a fresh container made from the previous step's file system (a
  committed image), as its main process under an init unless ``noInit``; what it leaves running dies
  with it; every option of it is honoured (``execs.WITH_EXEC_OPTIONS``), any other fails the lane;
- ``withDirectory``/``withFile`` lay their content over the next step's file system;
- a bound service starts for each exec of the container that binds it, on a network of that exec's
  own, reached there by its alias only, and is stopped when the exec ends;
- cache volumes are named podman volumes; secrets (plaintext or ``env://``) reach only the process
  of the exec that uses them, never its configuration, argv or committed image;
- results are cached by the chain's key, and a host directory's key is its content;
- a host directory is loaded with the engine's exclude semantics (``fsfilter``).
What it cannot do is listed in docs/testing.md ("What the lane still differs in"): the stand-in
images and interpreters (``conftest.STAND_INS``), one platform, no parallel execs, no GPUs.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import posixpath
import shlex
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.container.execs import (
    AS_SERVICE_OPTIONS,
    State,
    Substitutions,
    Unsupported,
    check_call,
    configure,
    exec_error,
    expand,
    failed,
    secret_value,
)
from tests.container.fsfilter import content_digest, copy_kept
from tests.container.podman import Podman
from tests.container.rootfs import copy_into, inside, runnable, target_in
from tests.dagger_render import Call, render

PLATFORM = "linux/amd64"  # this machine's, and no emulation
SECRETS_FILE = "/run/cuda-ci-lane-secrets"  # read by the exec's shell, then replaced by the command


class StandInMismatch(Exception):
    """A stand-in image does not answer what the graph asks of the image it stands in for."""


@dataclass
class Lane:
    """One interpreter: stand-ins, a default network, snapshots after each exec, everything removed at close."""

    podman: Podman
    substitutions: Substitutions
    network: str
    workdir: Path
    session: str = field(default_factory=lambda: os.urandom(4).hex())
    snapshots: dict[str, State] = field(default_factory=dict)
    results: dict[str, Path] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)
    log: list[list[str]] = field(default_factory=list)  # every exec's argv, as run
    stderr: list[tuple[list[str], str]] = field(default_factory=list)  # each finished exec's argv and stderr
    bound: list[tuple[str, str]] = field(default_factory=list)  # (alias, network) of every service started
    secret_configs: list[str] = field(default_factory=list)  # inspections of every step that carried a secret
    _digests: dict[tuple[str, tuple[str, ...]], str] = field(default_factory=dict)
    _configs: dict[str, tuple[list[str], str]] = field(default_factory=dict)
    _contents: dict[Path, str] = field(default_factory=dict)  # results never change once made
    _answered: set[tuple[str, str, str]] = field(default_factory=set)  # (stand-in, command, PATH) found
    _count: int = 0

    # --- entry points: what the module awaits --------------------------------------------------
    def stdout(self, container: Any) -> str:
        self._digests.clear()  # a host directory is read again by each call, as the engine does
        return self._run_container(render(container)).last_stdout

    def exit_code(self, container: Any) -> int:
        self._digests.clear()
        return self._run_container(render(container)).last_exit_code

    def stderr_of(self, container: Any) -> str:
        self._digests.clear()
        return self._run_container(render(container)).last_stderr

    def directory(self, directory: Any) -> Path:
        self._digests.clear()
        return self._directory(render(directory))

    def exists(self, directory: Any, path: str, expected_type: Any = None) -> bool:
        self._digests.clear()
        target = self._directory(render(directory)) / path
        kind = getattr(expected_type, "value", expected_type)
        checks = {None: target.exists, "DIRECTORY_TYPE": target.is_dir, "REGULAR_TYPE": target.is_file}
        return bool(checks.get(kind, target.is_symlink)())

    def contents(self, file: Any) -> str:
        self._digests.clear()
        return self._file(render(file)).read_text()

    def leftovers(self) -> list[str]:
        """Containers of this lane still present (none between calls: steps and services are removed)."""
        listed = self.podman("ps", "-a", "--filter", f"name=cuda-ci-lane-{self.session}-", "--format", "{{.Names}}")
        return listed.stdout.decode().split()

    def close(self) -> None:
        for name in self.leftovers():
            self.podman("rm", "-f", "-t", "0", name, check=False)
        for image in reversed(self.images):
            self.podman("rmi", "-f", image, check=False)

    # --- keys: the chain, with a host directory's content in place of its path ---------------------
    def _keys(self, chain: list[Call]) -> list[str]:
        """The key of every prefix of ``chain``."""
        digest, keys, calls = hashlib.sha256(), [], chain
        if chain and chain[0].name == "host":
            check_call(chain[1])
            digest.update(f"host:{self._host_digest(chain[1])}".encode())
            keys, calls = [digest.hexdigest()] * 2, chain[2:]
        for call in calls:
            plain = [call.type_name, call.name, {k: self._plain(v) for k, v in call.args.items()}]
            digest.update(json.dumps(plain, sort_keys=True).encode())
            keys.append(digest.copy().hexdigest())
        return keys

    def _plain(self, value: Any) -> Any:
        if isinstance(value, list) and value and isinstance(value[0], Call):
            return self._content_key(value) or self._keys(value)[-1]
        if isinstance(value, list):
            return [self._plain(v) for v in value]
        return value

    def _content_key(self, chain: list[Call]) -> str | None:
        """A folder or a file passed as an argument is keyed by what it holds, as the engine's cache is:
        the same content reached another way (another checkout, another step) hits the same layers."""
        last = chain[-1]
        if last.name == "file":
            found = self._file(chain)
            return f"file:{found.stat().st_mode & 0o777}:{hashlib.sha256(found.read_bytes()).hexdigest()}"
        if last.name == "directory" or last.type_name == "Directory":
            folder = self._directory(chain)
            if folder not in self._contents:
                self._contents[folder] = content_digest(folder, [])
            return f"directory:{self._contents[folder]}"
        return None

    def _host_digest(self, call: Call) -> str:
        token = (call.args["path"], tuple(call.args.get("exclude", ())))
        if token not in self._digests:
            self._digests[token] = content_digest(Path(token[0]), token[1])
        return self._digests[token]

    # --- directories and files --------------------------------------------------------------------
    def _directory(self, chain: list[Call]) -> Path:
        key = self._keys(chain)[-1]
        if key in self.results:
            return self.results[key]
        head = chain[0]
        check_call(head)
        if head.name == "container":
            cut = next(i for i, c in enumerate(chain) if c.type_name == "Container" and c.name == "directory")
            result, rest = self._export(chain[:cut], chain[cut].args["path"]), chain[cut + 1 :]
        elif head.name == "host":
            result, rest = self._new_folder("host"), chain[2:]
            copy_kept(Path(chain[1].args["path"]), chain[1].args.get("exclude", []), result)
        else:
            result, rest = self._new_folder("dir"), chain[1:]
        for call in rest:
            check_call(call)
            result = self._directory_step(result, call)
        self.results[key] = result
        return result

    def _directory_step(self, current: Path, call: Call) -> Path:
        if call.name == "directory":
            return current / str(call.args["path"])
        changed = self._new_folder("dir")  # results are never changed in place: others read them
        shutil.copytree(current, changed, symlinks=True, dirs_exist_ok=True)
        if call.name == "withNewFile":  # the engine's default permissions, 0644
            target = target_in(changed, str(call.args["path"]))
            target.write_text(str(call.args["contents"]))
            target.chmod(0o644)
            return changed
        source = (
            self._directory(call.args["source"]) if call.name == "withDirectory" else self._file(call.args["source"])
        )
        copy_into(source, changed / call.args["path"])
        return changed

    def _file(self, chain: list[Call]) -> Path:
        key = self._keys(chain)[-1]
        if key not in self.results:
            *prefix, last = chain
            check_call(last)
            if last.type_name == "Container":
                self.results[key] = self._export(prefix, last.args["path"])
            else:
                self.results[key] = self._directory(prefix) / last.args["path"]
        return self.results[key]

    def _export(self, chain: list[Call], path: str) -> Path:
        state = copy.deepcopy(self._run_container(chain))
        name = self._name("export")
        self.podman("create", "--name", name, "--entrypoint", '["true"]', state.image)
        try:
            with self._mounted(name) as root:
                self._lay_over(root, state)
                found = inside(root, posixpath.join(state.workdir, path))
                if found is None:
                    raise FileNotFoundError(f"{path} does not exist in the container (chain ends in {chain[-1].name})")
                target = self._new_folder("out") / "x"
                copy_into(found, target)
        finally:
            self.podman("rm", "-f", name, check=False)
        return target

    def _new_folder(self, prefix: str) -> Path:
        return Path(tempfile.mkdtemp(dir=self.workdir, prefix=f"{prefix}-"))

    # --- containers ---------------------------------------------------------------------------------
    def _run_container(self, chain: list[Call]) -> State:
        keys = self._keys(chain)
        start, state = self._resume(chain, keys)
        for index in range(start, len(chain)):
            call = chain[index]
            check_call(call, self.substitutions.removed_calls)
            self._apply(state, call)
            if call.name == "withExec":  # as the engine's layer cache: a later chain with this prefix starts here
                self.snapshots[keys[index]] = copy.deepcopy(state)
        return state

    def _resume(self, chain: list[Call], keys: list[str]) -> tuple[int, State]:
        for end in range(len(chain), 2, -1):
            if chain[end - 1].name == "withExec" and keys[end - 1] in self.snapshots:
                return end, copy.deepcopy(self.snapshots[keys[end - 1]])
        head, base = chain[0], chain[1] if len(chain) > 1 else None
        if head.name != "container" or base is None or base.name != "from":
            raise Unsupported(f"a container that does not start with from(): {[c.name for c in chain[:2]]}")
        check_call(head)
        platform = head.args.get("platform")
        if platform is None:
            raise Unsupported("Query.container without a platform: the module's images are single-architecture")
        if platform != PLATFORM:
            raise Unsupported(f"platform {platform}: this machine runs {PLATFORM} containers only, without emulation")
        image = self.substitutions.image(base.args["address"])
        entrypoint, path = self._image_config(image)
        return 2, State(image=image, base=image, entrypoint=entrypoint, path=path)

    def _image_config(self, image: str) -> tuple[list[str], str]:
        if image not in self._configs:
            config = json.loads(self.podman("image", "inspect", "--format", "{{json .Config}}", image).stdout)
            env = dict(e.split("=", 1) for e in config.get("Env") or [])
            default = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            self._configs[image] = (list(config.get("Entrypoint") or []), env.get("PATH", default))
        return self._configs[image]

    def _apply(self, state: State, call: Call) -> None:
        name, args = call.name, call.args
        if name in ("withDirectory", "withFile"):
            source = self._source(call)
            state.pending.append((posixpath.join(state.workdir, args["path"]), source))
        elif name == "withExec":
            self._exec(state, args)
        elif name not in self.substitutions.removed_calls:
            configure(state, call)

    def _source(self, call: Call) -> Path:
        """What a ``withDirectory``/``withFile`` lays over its target."""
        return self._directory(call.args["source"]) if call.name == "withDirectory" else self._file(call.args["source"])

    def _argv(self, state: State, args: Mapping[str, Any]) -> list[str]:
        argv = self.substitutions.argv(args.get("args") or [])
        if args.get("expand"):
            argv = [expand(a, state.env) for a in argv]
        return [*state.entrypoint, *argv] if args.get("useEntrypoint") else argv

    def _exec(self, state: State, args: Mapping[str, Any]) -> None:
        argv, expect, stdin = self._argv(state, args), str(args.get("expect", "SUCCESS")), args.get("stdin")
        self.log.append(argv)
        with self._services(state) as network:
            step = self._create(state, argv, network, init=not args.get("noInit"), interactive=stdin is not None)
            try:
                self._prepare(step, state, argv[0])
                attach = ["start", "--attach", *(["--interactive"] if stdin is not None else []), step]
                code = self.podman(*attach, check=False, stdin=stdin.encode() if stdin is not None else None).returncode
                if code >= 125:  # podman's own failure, or the command's: the container knows which
                    code = int(self.podman("inspect", "--format", "{{.State.ExitCode}}", step).stdout.decode())
                # the container's own streams (what `start --attach` prints may hold podman's warnings)
                logs = self.podman("logs", step)
                out, err = logs.stdout.decode(errors="replace"), logs.stderr.decode(errors="replace")
                self.stderr.append((argv, err))
                if failed(code, expect):
                    raise exec_error(args["args"], code, out, err, expect)
                self._redirect(step, state, args, out, err)
                state.image = self._commit(step, state)
                state.last_stdout = "" if args.get("redirectStdout") else out
                state.last_stderr = "" if args.get("redirectStderr") else err
                state.last_exit_code = code
            finally:
                self.podman("rm", "-f", "-t", "0", step, check=False)

    def _create(self, state: State, argv: list[str], network: str, *, init: bool, interactive: bool,
                alias: str | None = None) -> str:  # fmt: skip
        name = self._name("svc" if alias else "step")
        options = ["--name", name, "--network", network, "--workdir", state.workdir]
        options += [*(["--network-alias", alias] if alias else []), *(["--init"] if init else [])]
        options += [*(["--interactive"] if interactive else []), *(f"--env={k}={v}" for k, v in state.env.items())]
        options += [item for path, volume in state.caches.items() for item in ("--volume", f"{volume}:{path}")]
        command = argv
        if state.secrets:  # the values reach the process only: a file the shell reads, then execs the command
            secrets = self._new_folder("secrets") / "env"
            lines = [f"{n}={shlex.quote(secret_value(s))}\n" for n, s in state.secrets.items()]
            secrets.write_text("".join(lines))
            secrets.chmod(0o600)
            options += ["--volume", f"{secrets}:{SECRETS_FILE}:ro"]
            command = ["/bin/sh", "-c", 'set -a; . "$0"; set +a; exec "$@"', SECRETS_FILE, *argv]
        self.podman("create", *options, "--entrypoint", json.dumps(command), state.image)
        if state.secrets:
            self.secret_configs.append(self.podman("inspect", name).stdout.decode())
        return name

    def _commit(self, step: str, state: State) -> str:
        self._count += 1
        image = f"localhost/cuda-ci-lane-snapshot:{self.session}-{self._count}"
        self.podman("commit", "--quiet", step, image)
        self.images.append(image)
        if state.secrets:
            self.secret_configs.append(self.podman("image", "inspect", image).stdout.decode())
        return image

    def _redirect(self, step: str, state: State, args: Mapping[str, Any], out: str, err: str) -> None:
        targets = [(args[k], text) for k, text in (("redirectStdout", out), ("redirectStderr", err)) if args.get(k)]
        if targets:
            with self._mounted(step) as root:
                for path, text in targets:
                    written = self._new_folder("redirect") / "output"
                    written.write_text(text)
                    copy_into(written, target_in(root, posixpath.join(state.workdir, path)))

    def _prepare(self, name: str, state: State, command: str) -> None:
        """Lay what is pending over the container, and check the stand-in can run ``command`` (once per
        image lineage and command: a mount costs two podman calls)."""
        asked = (state.base, command, state.env.get("PATH", state.path))
        if state.pending or asked not in self._answered:
            with self._mounted(name) as root:
                self._lay_over(root, state)
                self._check_stand_in(root, state, command)
            self._answered.add(asked)

    def _lay_over(self, root: Path, state: State) -> None:
        for path, source in state.pending:
            copy_into(source, target_in(root, path))
        state.pending.clear()

    def _check_stand_in(self, root: Path, state: State, command: str) -> None:
        if not runnable(root, command, state.env.get("PATH", state.path)):
            raise StandInMismatch(
                f"the stand-in image {state.base} has no {command}, which the graph runs: it does not answer "
                "what the graph asks of the image it stands in for (add it to the stand-in, or list a substitution)"
            )

    @contextmanager
    def _mounted(self, container: str) -> Iterator[Path]:
        root = Path(self.podman("mount", container).stdout.decode().strip())
        try:
            yield root
        finally:
            self.podman("unmount", container, check=False)

    def _name(self, kind: str) -> str:
        self._count += 1
        return f"cuda-ci-lane-{self.session}-{kind}-{self._count}"

    # --- services -------------------------------------------------------------------------------------
    @contextmanager
    def _services(self, state: State) -> Iterator[str]:
        """The network an exec runs on: the lane's, or, where it binds services, one of its own on which
        only its services answer to their aliases; they stop when the exec ends."""
        if not state.bindings:
            yield self.network
            return
        network = self._name("net")
        self.podman("network", "create", network)
        started: list[str] = []
        try:
            for alias, service in state.bindings.items():
                started.append(self._start_service(alias, service, network))
            yield network
        finally:
            for name in started:
                self.podman("rm", "-f", "-t", "0", name, check=False)
            self.podman("network", "rm", "-f", network, check=False)

    def _start_service(self, alias: str, service: list[Call], network: str) -> str:
        index = next(i for i, c in enumerate(service) if c.name == "asService")
        as_service = service[index]
        check_call(as_service)
        assert set(as_service.args) <= AS_SERVICE_OPTIONS
        state = copy.deepcopy(self._run_container(service[:index]))
        argv = self._argv(state, as_service.args)
        if not argv:
            raise Unsupported("asService without args: the lane runs no image default command")
        self.log.append(argv)
        name = self._create(
            state, argv, network, init=not as_service.args.get("noInit"), interactive=False, alias=alias
        )
        self._prepare(name, state, argv[0])
        self.podman("start", name)
        self.bound.append((alias, network))
        self._wait_for_ports(name, alias, state.ports)
        return name

    def _wait_for_ports(self, name: str, alias: str, ports: list[int]) -> None:
        probe = "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)"
        deadline = time.monotonic() + 60
        for port in ports:
            while self.podman("exec", name, "python3", "-c", probe, str(port), check=False).returncode != 0:
                running = self.podman("inspect", "--format", "{{.State.Running}}", name, check=False).stdout
                if b"true" not in running or time.monotonic() > deadline:
                    logs = self.podman("logs", name, check=False).stderr.decode()[-2000:]
                    raise RuntimeError(f"service {alias} did not open port {port} within 60 s: {logs}")
                time.sleep(0.5)


@contextmanager
def lane(podman: Podman, substitutions: Substitutions, workdir: Path) -> Iterator[Lane]:
    network = f"cuda-ci-lane-{os.urandom(3).hex()}"
    podman("network", "create", network)
    engine = Lane(podman=podman, substitutions=substitutions, network=network, workdir=workdir)
    try:
        yield engine
    finally:
        engine.close()
        with suppress(Exception):
            podman("network", "rm", "-f", network, check=False)
