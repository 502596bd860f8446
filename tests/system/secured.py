"""A Keel deployment that requires API keys, with one key per role, for the auth tests."""

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from cli.devserver import DevServer
from keel.db import create_engine, init_db, session_factory
from keel.keys import create_key as store_key
from keel.schemas.keys import KeyCreated, KeyView
from keel.testing.stack import KEEL, Stack

ROLES = ("admin", "submitter", "reviewer", "operator")


async def keel(stack: Stack, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    process = await asyncio.create_subprocess_exec(
        KEEL,
        *args,
        env={**stack.env(), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return subprocess.CompletedProcess(args, process.returncode or 0, out.decode(), err.decode())


async def create_key(
    stack: Stack, role: str, name: str, principal: str | None = None
) -> dict[str, Any]:
    """`keel keys create`, on the stack's database: the bootstrap path, no API key needed."""
    whose = () if principal is None else ("--principal", principal)
    done = await keel(stack, "--json", "keys", "create", "--role", role, "--name", name, *whose)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def create_keys(stack: Stack, wanted: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Keys by label ({label: role}), written straight into the stack's database."""
    stack.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite+aiosqlite:///{stack.db_file}")
    keys: dict[str, dict[str, Any]] = {}
    try:
        await init_db(engine)
        async with session_factory(engine)() as session:
            for label, role in wanted.items():
                row, key = await store_key(session, role, f"{label} key")  # type: ignore[arg-type]
                view = KeyView.model_validate(row, from_attributes=True)
                keys[label] = KeyCreated(**view.model_dump(), key=key).model_dump(mode="json")
    finally:
        await engine.dispose()
    return keys


@dataclass
class Secured:
    stack: Stack
    keys: dict[str, dict[str, Any]]

    def client(self, name: str | None) -> httpx.AsyncClient:
        headers = {} if name is None else {"Authorization": f"Bearer {self.keys[name]['key']}"}
        return httpx.AsyncClient(base_url=self.stack.api_url, headers=headers, timeout=30)


@asynccontextmanager
async def secured_stack(
    temporal: DevServer, data_dir: Path, **settings: str
) -> AsyncIterator[Secured]:
    """A worker and an API that require keys; one key per role, and a second submitter."""
    stack = Stack(temporal.address, data_dir, {"KEEL_AUTH": "required", **settings})
    try:
        keys = await create_keys(stack, {**{role: role for role in ROLES}, "other": "submitter"})
        await stack.start_worker()
        await stack.start_api()
        yield Secured(stack, keys)
    finally:
        stack.stop_all()
