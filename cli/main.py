"""The `keel` command line.

`up`, `worker`, `api` and `ping` start or check processes; `run`, `runs`, `reviews`,
`decide`, `grade`, `tools`, `ingest`, `collections` and `search` talk to the API
(`cli.api_commands`), and so do `show`, `follow`, `cancel` and `claim` (`cli.run_commands`);
`keys` and `audit` work on the database directly (`cli.admin`); `calibrate` scores
escalations (`cli.calibrate`); `eval` runs an agent over a labelled set (`cli.evaluate`).
"""

import argparse
import asyncio
import logging
import os
import sys

import uvloop
from pydantic import ValidationError

from cli import admin, api_commands, calibrate, evaluate, run_commands
from cli.api_client import Api, ApiError
from keel.errors import KeelUserError
from keel.settings import Settings

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keel", description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--json", action="store_true", help=_JSON_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start Temporal (embedded), a worker and the API")
    up.add_argument("--untuned", action="store_true", help="start the dev server without tuning")
    sub.add_parser("worker", help="run a worker against KEEL_TEMPORAL_ADDRESS")
    sub.add_parser("api", help="serve the REST API")
    sub.add_parser("ping", help="exit 0 when Temporal and the database answer")
    api_commands.add_parsers(sub)
    run_commands.add_parsers(sub)
    admin.add_parsers(sub)
    calibrate.add_parser(sub)
    evaluate.add_parser(sub)
    _json_anywhere(sub)
    return parser


def _json_anywhere(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Make `--json` read the same before or after a command, at every level.

    `keel --json runs`, `keel runs --json` and `keel keys list --json`: every command takes
    it too, leaving the top level's value alone when it is absent.
    """
    for command in sub.choices.values():
        command.add_argument(
            "--json", action="store_true", default=argparse.SUPPRESS, help=_JSON_HELP
        )
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                _json_anywhere(action)


_JSON_HELP = "print JSON rather than text"
_API_HANDLERS = {**api_commands.HANDLERS, **run_commands.HANDLERS}
"""The commands that talk to the API."""


def main(argv: list[str] | None = None) -> int:
    """Run the `keel` command."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
        if args.command in _API_HANDLERS:
            api = Api(settings.api_base_url, settings.api_key)
            return _API_HANDLERS[args.command](api, args)
        if args.command in admin.COMMANDS:
            return admin.run(args, settings)
        if args.command == calibrate.COMMAND:
            return calibrate.run(args, settings)
        if args.command == evaluate.COMMAND:
            return evaluate.run(args, settings)
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s"
        )
        from cli import up

        # The long-running parts run on uvloop: asyncio's API, with a faster loop.
        if args.command == "up":
            if args.untuned:
                settings = settings.model_copy(update={"temporal_dev_tuned": False})
            uvloop.run(up.run_up(settings))
        elif args.command == "worker":
            uvloop.run(up.run_worker_process(settings))
        elif args.command == "api":
            uvloop.run(up.run_api(settings))
        elif args.command == "ping":
            asyncio.run(up.ping(settings))
            print("ok")
    except (KeelUserError, ApiError) as err:
        print(f"keel: {err}", file=sys.stderr)
        return 1
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in err.errors()
        )
        print(f"keel: invalid settings: {problems}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`keel runs | head`): stop quietly, and keep the interpreter's
        # own flush at exit from failing on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 0


if __name__ == "__main__":
    sys.exit(main())
