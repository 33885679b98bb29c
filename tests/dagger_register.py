"""Run inside the module's runtime environment: load the module as Dagger's runtime entry does, and
print, as JSON, the type definitions it would register with the engine.

The runtime's entry script is ``from dagger.mod.cli import app; app(None, register)``; ``app``
connects to the engine, then ``load_module()`` (the ``dagger.mod`` entry point) and
``Module.register()`` → ``_typedefs()``, which ends in ``await mod.id()``, the one call that
needs the engine. That call is replaced here by one that renders the lazy call chain instead.
"""

from __future__ import annotations

import json
import sys

import anyio
from dagger.client.gen import Module
from dagger.mod.cli import load_module

from tests.dagger_render import Call, render


def as_json(chain: list[Call]) -> list[dict[str, object]]:
    def value(v: object) -> object:
        if isinstance(v, list) and v and isinstance(v[0], Call):
            return as_json(v)
        if isinstance(v, list):
            return [value(x) for x in v]
        return v

    return [{"call": c.name, "args": {k: value(v) for k, v in c.args.items()}} for c in chain]


async def main() -> None:
    async def rendered_id(self: Module) -> str:
        json.dump(as_json(render(self)), sys.stdout)
        return "module-id"

    Module.id = rendered_id  # type: ignore[method-assign]
    await load_module()._typedefs()


if __name__ == "__main__":
    anyio.run(main)
