"""The `keel` commands on one run or review, named by its id or a unique start of it.

`show` prints a run, `follow` its steps live until it ends, `cancel` asks it to stop;
`claim` takes a review for its lease (`--release` gives it back).
"""

import argparse
import json
from collections.abc import Callable

from cli.api_client import Api, resolve_review, resolve_run
from cli.api_commands import follow, print_run

__all__ = ["HANDLERS", "add_parsers"]


def _cmd_show(api: Api, args: argparse.Namespace) -> int:
    run = api.call("GET", f"/v1/runs/{resolve_run(api, args.run_id)}")
    if args.json:
        print(json.dumps(run, indent=2))
    else:
        print_run(run)
    return 0


def _cmd_follow(api: Api, args: argparse.Namespace) -> int:
    return follow(api, resolve_run(api, args.run_id), args)


def _cmd_cancel(api: Api, args: argparse.Namespace) -> int:
    run = api.call("POST", f"/v1/runs/{resolve_run(api, args.run_id)}/cancel")
    if args.json:
        print(json.dumps(run, indent=2))
    else:
        print(f"cancelling {run['run_id']} ({run['status']})\nui         {run['ui_url']}")
    return 0


def _cmd_claim(api: Api, args: argparse.Namespace) -> int:
    review_id = resolve_review(api, args.review_id)
    path = f"/v1/reviews/{review_id}/claim"
    if args.release:
        params = {"reviewer": args.reviewer} if args.reviewer else {}
        api.call("DELETE", path, params=params)
        if not args.json:
            print(f"review {review_id}: released to its queue")
        return 0
    review = api.post(path, {"reviewer": args.reviewer, "lease_s": args.lease})
    if args.json:
        print(json.dumps(review, indent=2))
    else:
        claim = review["claim"]
        print(
            f"review {review['id']}: claimed by {claim['claimant']} until {claim['expires_at']}\n"
            f"decide with: keel decide {review['id']} approve|edit|reject"
        )
    return 0


def add_parsers(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the commands on one run or review to the `keel` parser."""
    for name, what in (
        ("show", "show one run"),
        ("follow", "show a run's steps live until it ends"),
        ("cancel", "ask a run to stop (a pending review is closed as cancelled)"),
    ):
        sub.add_parser(name, help=what).add_argument(
            "run_id", help="the run's id, or a unique start of it"
        )
    claim = sub.add_parser("claim", help="take a review for its lease, so nobody else decides")
    claim.add_argument("review_id", help="the review's id; its run part may be shortened")
    claim.add_argument("--release", action="store_true", help="give the review back instead")
    claim.add_argument("--lease", type=float, help="seconds to hold it (at most the default)")
    claim.add_argument("--reviewer", help="who claims (when the API runs without keys)")


HANDLERS: dict[str, Callable[[Api, argparse.Namespace], int]] = {
    "show": _cmd_show,
    "follow": _cmd_follow,
    "cancel": _cmd_cancel,
    "claim": _cmd_claim,
}
"""The top-level commands this module serves, each with the API it talks to."""
