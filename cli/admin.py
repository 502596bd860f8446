"""`keel keys` and `keel audit`: commands that work on Keel's database directly.

They need no API and no key: whoever can open the database (`KEEL_DATABASE_URL`, or the
SQLite file in `KEEL_DATA_DIR`) already holds everything a key protects, and the first
admin key has to come from somewhere. Over HTTP, admins manage keys at `/v1/keys`.
`keel audit verify` also reads each run's anchor from Temporal and its signed checkpoint
(`keel.audit_anchor`).
"""

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable

from pydantic import TypeAdapter, ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from keel.audit_anchor import verify_audit
from keel.audit_checkpoint import Checkpoints
from keel.db import create_engine, init_db, session_factory
from keel.keys import ROLES, PrincipalId, create_key, list_keys, revoke_key
from keel.run_client import RunClient
from keel.schemas.audit import AuditVerdict
from keel.schemas.keys import KeyCreated, KeyView
from keel.settings import Settings
from keel.temporal.connection import connect

__all__ = ["COMMANDS", "add_parsers", "run"]

COMMANDS = ("keys", "audit")
"""The top-level commands this module serves."""

_PRINCIPAL_ID: TypeAdapter[str] = TypeAdapter(PrincipalId)


def add_parsers(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add `keys` and `audit` to the `keel` parser."""
    keys = sub.add_parser("keys", help="create, list and revoke API keys (on the database)")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    create = actions.add_parser("create", help="create a key and print it (shown only once)")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", required=True, help="a label for the key, e.g. 'ana laptop'")
    create.add_argument(
        "--principal",
        type=_principal,
        help="the person or service holding it (e.g. ana): all keys of one principal are one "
        "identity, who never decides a review of a run any of them submitted (default: a "
        "principal of its own, named by the key's id)",
    )
    actions.add_parser("list", help="list keys (never their secrets)")
    revoke = actions.add_parser("revoke", help="revoke a key: it gets 401 from now on")
    revoke.add_argument("key_id")
    audit = sub.add_parser("audit", help="check audit trails")
    checks = audit.add_subparsers(dest="audit_command", required=True)
    verify = checks.add_parser(
        "verify",
        help="recompute hash chains and compare them with their anchors in Temporal and their "
        "signed checkpoints; exit 1 when one is broken, forged, truncated or re-chained",
    )
    verify.add_argument("run_id", nargs="?", help="one run (default: every run)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run a `keys` or `audit` command; its exit code."""
    if args.command == "keys":
        command = {"create": _create, "list": _list, "revoke": _revoke}[args.keys_command]
        return asyncio.run(_with_session(settings, lambda session: command(session, args)))
    return asyncio.run(_with_session(settings, lambda session: _verify(session, settings, args)))


async def _with_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[int]]) -> int:
    engine = create_engine(settings.sql_url)
    try:
        await init_db(engine)
        async with session_factory(engine)() as session:
            return await work(session)
    finally:
        await engine.dispose()


async def _create(session: AsyncSession, args: argparse.Namespace) -> int:
    row, key = await create_key(session, args.role, args.name, args.principal)
    created = KeyCreated(**_view(row).model_dump(), key=key)
    if args.json:
        print(created.model_dump_json(indent=2))
    else:
        print(f"key        {key}\nid         {row.id}\nprincipal  {row.principal}")
        print(f"role       {row.role}\nname       {row.name}")
        print("Keep the key now: Keel stores only its hash and cannot show it again.")
    return 0


async def _list(session: AsyncSession, args: argparse.Namespace) -> int:
    views = [_view(row) for row in await list_keys(session)]
    if args.json:
        print(json.dumps([v.model_dump(mode="json") for v in views], indent=2))
        return 0
    for view in views:
        state = f"revoked {view.revoked_at:%Y-%m-%d %H:%M}" if view.revoked_at else "active"
        print(f"{view.id}  {view.principal:<20}  {view.role:<9}  {state:<24}  {view.name}")
    if not views:
        print("no keys: the API runs open on loopback until one is created")
    return 0


async def _revoke(session: AsyncSession, args: argparse.Namespace) -> int:
    row = await revoke_key(session, args.key_id)
    if row is None:
        print(f"keel: no API key {args.key_id!r}", file=sys.stderr)
        return 1
    print(f"revoked {row.id} ({row.role}, {row.name})")
    return 0


_FAILED = ("broken", "forged", "truncated", "rechained")


async def _verify(session: AsyncSession, settings: Settings, args: argparse.Namespace) -> int:
    runs = RunClient(await connect(settings))
    checkpoints = Checkpoints.from_settings(settings)
    verdicts = await verify_audit(session, runs, checkpoints, settings.task_queue, args.run_id)
    if args.run_id is not None and verdicts[0].verdict == "unanchored" and not verdicts[0].entries:
        print(f"keel: run {args.run_id} has no audit trail", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([v.model_dump(mode="json") for v in verdicts], indent=2))
    else:
        for verdict in verdicts:
            name = verdict.verdict.upper() if verdict.verdict in _FAILED else verdict.verdict
            print(f"{name:<10}  {verdict.run_id}  {verdict.entries} entries; {verdict.detail}")
        print(_summary(verdicts))
    return 1 if any(v.verdict in _FAILED for v in verdicts) else 0


def _summary(verdicts: list[AuditVerdict]) -> str:
    counts: dict[str, int] = {}
    for verdict in verdicts:
        counts[verdict.verdict] = counts.get(verdict.verdict, 0) + 1
    entries = sum(v.entries for v in verdicts)
    found = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    return f"{len(verdicts)} run(s), {entries} entries checked: {found or 'nothing to check'}"


def _principal(value: str) -> str:
    """`--principal`, checked as the API checks it (argparse prints the reason, exits 2)."""
    try:
        return _PRINCIPAL_ID.validate_python(value)
    except ValidationError as err:
        raise argparse.ArgumentTypeError(
            err.errors()[0]["msg"].removeprefix("Value error, ")
        ) from None


def _view(row: object) -> KeyView:
    return KeyView.model_validate(row, from_attributes=True)
