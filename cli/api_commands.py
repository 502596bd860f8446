"""The `keel` commands that talk to the API: runs, usage, reviews, tools and collections.

They call `KEEL_API_URL` (default the local `keel up`) with the key in `KEEL_API_KEY`, if
set, and print what it answers (its JSON with `--json`).
"""

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

from cli import ingestion
from cli.api_client import Api, ApiError, resolve_review
from keel.errors import BodyTooDeep, InvalidDocument
from keel.schemas.retrieval import LOCAL_EMBEDDING, TORCH_EMBEDDING
from keel.schemas.runs import TERMINAL_STATUSES
from keel.schemas.spend import RunSort, UsageBucket, UsageGroup
from keel.settings import Settings

__all__ = ["HANDLERS", "add_parsers", "follow", "print_run"]


def print_run(run: dict[str, Any]) -> None:
    """A run view as lines: status, answer, citations, pending review, cost, UI link."""
    print(f"run      {run['run_id']}")
    print(f"agent    {run['agent']}")
    print(
        f"status   {run['status']}"
        + (f" (node: {run['current_node']})" if run.get("current_node") else "")
    )
    result = run.get("result")
    if result:
        if result.get("answer") is not None:
            print(f"answer   {result['answer']}")
        for citation in result.get("citations", []):
            print(f"  cites  {citation['passage_id']}  ({citation['title']})")
        print(
            f"confidence {_score(result['confidence'])}"
            + ("  (reviewed)" if result.get("reviewed") else "")
        )
    review = run.get("pending_review")
    if review:
        print(
            f"review   {review['review_id']}  "
            f"({review['reason']}, confidence {_score(review['confidence'])})"
        )
        print(f"         decide with: keel decide {review['review_id']} approve|edit|reject")
    cost = run.get("cost")
    if cost and cost["entries"]:
        print(f"cost     ${cost['total_usd']:.6f} over {len(cost['entries'])} model call(s)")
        for entry in cost["entries"]:
            usage = entry["usage"]
            print(
                f"  {entry['step']:<10} {entry['provider']}/{entry['model']}  "
                f"in {usage['input_tokens']} out {usage['output_tokens']}  ${entry['cost_usd']:.6f}"
            )
    if run.get("error"):
        print(f"error    {run['error']}")
    print(f"ui       {run['ui_url']}")


def _score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _cmd_run(api: Api, args: argparse.Namespace) -> int:
    try:
        payload: Any = json.loads(args.input)
    except ValueError:
        payload = args.input
    if not isinstance(payload, dict):
        payload = args.input
    body = {"agent": args.agent, "input": payload}
    if args.key:
        body["idempotency_key"] = args.key
    started = api.call("POST", "/v1/runs", json=body)
    if args.follow:
        return follow(api, started["run_id"], args)
    if args.json and not args.wait:
        print(json.dumps(started, indent=2))
        return 0
    if not args.wait:
        print(f"started {started['run_id']} ({started['status']})\nui      {started['ui_url']}")
        return 0
    deadline = time.monotonic() + args.timeout
    while True:
        run = api.call("GET", f"/v1/runs/{started['run_id']}")
        if run["status"] in TERMINAL_STATUSES or run["status"] == "awaiting_review":
            break
        if time.monotonic() > deadline:
            print(f"still {run['status']} after {args.timeout:.0f}s", file=sys.stderr)
            break
        time.sleep(0.2)
    if args.json:
        print(json.dumps(run, indent=2))
    else:
        print_run(run)
    return 0 if run["status"] in ("completed", "awaiting_review") else 1


def follow(api: Api, run_id: str, args: argparse.Namespace) -> int:
    """Print the run's events as they happen, then the run."""
    for event in api.events(f"/v1/runs/{run_id}/events"):
        if args.json:
            print(json.dumps(event), flush=True)
            continue
        at = event["at"][11:19]
        what = " ".join(
            str(event[k]) for k in ("step", "detail", "status") if event.get(k) is not None
        )
        cost = f"  ${event['cost_usd']:.6f}" if event.get("cost_usd") else ""
        print(f"{at}  {event['type']:<14} {what}{cost}", flush=True)
    run = api.call("GET", f"/v1/runs/{run_id}")
    if not args.json:
        print_run(run)
    return 0 if run["status"] == "completed" else 1


def _cmd_runs(api: Api, args: argparse.Namespace) -> int:
    filters = {"agent": args.agent, "status": args.status, "limit": args.limit, "sort": args.sort}
    page = api.call("GET", "/v1/runs", params={k: v for k, v in filters.items() if v})
    return _print_items(args, page, "runs", _run_line, "no runs")


def _run_line(run: dict[str, Any]) -> str:
    return (
        f"{run['run_id']}  {run['agent']:<10} {run['status']:<16} "
        f"{run['created_at']}  ${run['cost_usd']:.6f}  {run['ui_url']}"
    )


def _cmd_usage(api: Api, args: argparse.Namespace) -> int:
    filters = {"group_by": args.by, "since": args.since, "until": args.until, "bucket": args.bucket}
    report = api.call("GET", "/v1/usage", params={k: v for k, v in filters.items() if v})
    if not args.json:
        print(f"runs started from {report['since']} until {report['until']}, by {args.by}")
        print(f"{'bucket':<21}{args.by:<24}{'cost':>12}{'in':>10}{'out':>9}{'runs':>6}  escalated")
    return _print_items(args, report, "rows", _usage_line, "no runs in this period")


def _usage_line(row: dict[str, Any]) -> str:
    bucket, group = row["bucket_start"] or "-", row["group"] or "(none)"
    return (
        f"{bucket:<21}{group:<24}${row['cost_usd']:>11.6f}{row['input_tokens']:>10}"
        f"{row['output_tokens']:>9}{row['runs']:>6}  {row['escalation_rate']:.0%}"
    )


def _print_items(
    args: argparse.Namespace,
    page: dict[str, Any],
    key: str,
    lines: Callable[[dict[str, Any]], str],
    nothing: str,
) -> int:
    """`page` as JSON with `--json`; else the lines of each item of `page[key]`, or `nothing`."""
    if args.json:
        print(json.dumps(page, indent=2))
        return 0
    for item in page[key]:
        print(lines(item))
    if not page[key]:
        print(nothing)
    return 0


def _cmd_reviews(api: Api, args: argparse.Namespace) -> int:
    filters = {"status": args.status, "queue": args.queue, "kind": "audit" if args.audit else None}
    page = api.call("GET", "/v1/reviews", params={k: v for k, v in filters.items() if v})
    return _print_items(args, page, "reviews", _review_lines, "no reviews")


def _review_lines(review: dict[str, Any]) -> str:
    if review.get("kind") == "audit":
        graded = review["grade"] or f"grade with: keel grade {review['id']} correct|wrong"
        return (
            f"{review['id']}  audit (p={review['sampling_rate']:g})  {review['status']:<7} "
            f"conf {_score(review['confidence'])}  {review['question'][:60]!r}\n"
            f"    sent: {review['proposed_answer'][:100]!r}\n    {graded}"
        )
    return (
        f"{review['id']}  {review['status']:<9} {review['queue']:<10} {review['reason']:<19} "
        f"conf {_score(review['confidence'])}  {review['question'][:60]!r}\n"
        f"    proposed: {review['proposed_answer'][:100]!r}\n    ui: {review['ui_url']}"
    )


def _cmd_grade(api: Api, args: argparse.Namespace) -> int:
    review_id = resolve_review(api, args.review_id)
    body = {"grade": args.grade, "note": args.note, "reviewer": args.reviewer}
    review = api.post(f"/v1/reviews/{review_id}/grade", body)
    if args.json:
        print(json.dumps(review, indent=2))
    else:
        print(f"audit {review['id']}: graded {review['grade']}\nrun   {review['run_id']}")
    return 0


def _cmd_decide(api: Api, args: argparse.Namespace) -> int:
    review_id = resolve_review(api, args.review_id)
    try:
        arguments = json.loads(args.arguments) if args.arguments else None
    except ValueError as err:
        raise ApiError(f"--arguments is not JSON: {err}") from err
    body = {
        "action": args.action,
        "answer": args.answer,
        "arguments": arguments,
        "comment": args.comment,
        "reviewer": args.reviewer,
        # Without --action-hash, the decision is on the action the review shows right now.
        "action_hash": args.action_hash
        or api.call("GET", f"/v1/reviews/{review_id}")["action_hash"],
    }
    review = api.post(f"/v1/reviews/{review_id}/decision", body)
    if args.json:
        print(json.dumps(review, indent=2))
    else:
        print(
            f"review {review['id']}: {review['status']}\n"
            f"run    {review['run_id']}\nui     {review['ui_url']}"
        )
    return 0


def _cmd_tools(api: Api, args: argparse.Namespace) -> int:
    catalog = api.call("GET", "/v1/tools")
    return _print_items(
        args, catalog, "tools", _tool_lines, "no tools published yet: start a worker"
    )


def _tool_lines(info: dict[str, Any]) -> str:
    approval = "needs approval" if info["requires_approval"] else "runs freely"
    attempts = info["max_attempts"] or "unlimited"
    summary = info["description"].splitlines()[0]
    params = ", ".join(info["parameters"].get("properties", {}))
    return (
        f"{info['name']}({params})  [{approval}; {attempts} attempts; {info['source']}]\n"
        f"    {summary}"
    )


def _cmd_ingest(api: Api, args: argparse.Namespace) -> int:
    printer = ingestion.ProgressPrinter(sys.stdout, as_json=args.json)
    # Half the API's body limit per request leaves room for JSON escaping.
    limit = Settings().api_max_body_bytes // 2
    try:
        view = ingestion.ingest(
            api,
            args.collection,
            args.paths,
            max_request_bytes=limit,
            printer=printer,
            embedding=args.embedding,
        )
    except (InvalidDocument, BodyTooDeep, FileNotFoundError) as err:
        raise ApiError(str(err)) from err
    return 0 if view["status"] == "completed" else 1


def _cmd_collections(api: Api, args: argparse.Namespace) -> int:
    listing = api.call("GET", "/v1/collections")
    if args.json:
        print(json.dumps(listing, indent=2))
    else:
        ingestion.print_collections(listing)
    return 0


def _cmd_search(api: Api, args: argparse.Namespace) -> int:
    body = {"query": args.query, "k": args.k, "method": args.method}
    result = api.call("POST", f"/v1/collections/{args.collection}/search", json=body)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        ingestion.print_search(result)
    return 0


def add_parsers(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the commands that talk to the API to the `keel` parser."""
    run = sub.add_parser("run", help="start a run")
    run.add_argument("agent")
    run.add_argument("input", help="the text input, or a JSON object")
    run.add_argument("--key", help="idempotency key")
    run.add_argument("--wait", action="store_true", help="wait until it ends or needs review")
    run.add_argument("--follow", action="store_true", help="show each step live until it ends")
    run.add_argument("--timeout", type=float, default=120.0)
    runs = sub.add_parser("runs", help="list runs")
    runs.add_argument("--agent")
    runs.add_argument("--status")
    runs.add_argument("--limit", type=int, default=20)
    runs.add_argument(
        "--sort",
        choices=get_args(RunSort),
        help="order by Keel's ledger (model spend or start time; '-' for descending)",
    )
    usage = sub.add_parser("usage", help="model spend, tokens, runs and escalation rate")
    usage.add_argument("--by", choices=get_args(UsageGroup), default="agent")
    usage.add_argument("--since", help="ISO 8601 with an offset (default: 24 hours before --until)")
    usage.add_argument("--until", help="ISO 8601 with an offset (default: now)")
    usage.add_argument("--bucket", choices=get_args(UsageBucket), help="split by the runs' start")
    reviews = sub.add_parser("reviews", help="list reviews")
    reviews.add_argument(
        "--status", default="pending", help="pending (default), approved, …; '' for all"
    )
    reviews.add_argument("--queue", help="only this queue")
    reviews.add_argument(
        "--audit",
        action="store_true",
        help="audit samples (answers sent without review, to grade) instead of escalations",
    )
    grade = sub.add_parser("grade", help="grade an audit sample: was the sent answer right?")
    grade.add_argument("review_id")
    grade.add_argument("grade", choices=["correct", "wrong"])
    grade.add_argument("--note", help="why (kept with the grade)")
    grade.add_argument("--reviewer", help="who grades (when the API runs without keys)")
    sub.add_parser("tools", help="list the tools the workers run")
    ingest = sub.add_parser("ingest", help="add files and folders to a collection")
    ingest.add_argument("collection", help="created when it does not exist")
    ingest.add_argument("paths", nargs="+", type=Path, help="Markdown, text, HTML, JSON Lines")
    ingest.add_argument(
        "--embedding",
        default=LOCAL_EMBEDDING,
        type=lambda name: None if name == "none" else name,
        help=f"a new collection's embedding model: {LOCAL_EMBEDDING} (default), "
        f"{TORCH_EMBEDDING}, a deployment name, or none for BM25 only",
    )
    sub.add_parser("collections", help="list the collections")
    search = sub.add_parser("search", help="search a collection")
    search.add_argument("collection")
    search.add_argument("query")
    search.add_argument("-k", type=int, default=5, help="how many passages")
    search.add_argument("--method", choices=["bm25", "dense", "hybrid"])
    decide = sub.add_parser("decide", help="decide a review")
    decide.add_argument("review_id")
    decide.add_argument("action", choices=["approve", "edit", "reject"])
    decide.add_argument("--answer", help="the edited answer (with edit)")
    decide.add_argument("--arguments", help="the edited tool arguments, as JSON (with edit)")
    decide.add_argument("--comment")
    decide.add_argument("--reviewer")
    decide.add_argument(
        "--action-hash", help="the action_hash of the action decided on (default: current)"
    )


HANDLERS: dict[str, Callable[[Api, argparse.Namespace], int]] = {
    "run": _cmd_run,
    "runs": _cmd_runs,
    "usage": _cmd_usage,
    "reviews": _cmd_reviews,
    "decide": _cmd_decide,
    "grade": _cmd_grade,
    "tools": _cmd_tools,
    "ingest": _cmd_ingest,
    "collections": _cmd_collections,
    "search": _cmd_search,
}
"""The top-level commands this module serves, each with the API it talks to."""
