"""The Grafana dashboards under `deploy/grafana/` query only series a real stack exports.

A stack's worker and API serve `/metrics`; after runs that call models, escalate, get a
review decided and retry an activity, every series named by a dashboard's PromQL must be
among those they export.
"""

import contextlib
import json
import re
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from keel.net import free_port
from keel.testing.stack import eventually, start_run, wait_status
from tests.conftest import CONFIDENT, UNSURE

DASHBOARDS = Path(__file__).parents[2] / "deploy" / "grafana" / "dashboards"
_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
_PROMQL_WORDS |= {"and", "or", "unless", "offset", "inf", "nan"}


def _exprs() -> list[str]:
    exprs: list[str] = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            exprs += [target["expr"] for target in panel["targets"]]
    return exprs


def series_names(expr: str) -> set[str]:
    """The metric names in a PromQL expression: identifiers that are not functions, labels,
    keywords, durations or strings."""
    bare = re.sub(r'"[^"]*"', "", expr)
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", bare)  # label matchers, ranges
    bare = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", bare)  # grouping labels
    tokens = re.finditer(r"([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", bare)
    names = {t[1] for t in tokens if t[2] is None}  # a name before "(" is a function
    return {n for n in names if n.lower() not in _PROMQL_WORDS}


def test_series_names_skip_functions_labels_and_keywords() -> None:
    expr = (
        'sum by (route) (increase(a_total{x="y"}[5m])) - on (le) b_sum'
        " or histogram_quantile(0.9, c)"
    )
    assert series_names(expr) == {"a_total", "b_sum", "c"}


async def _exported(url: str) -> set[str]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(url)
    response.raise_for_status()
    return {
        sample.name
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


async def test_every_dashboard_series_is_exported(make_stack) -> None:  # type: ignore[no-untyped-def]
    exprs = _exprs()
    assert exprs
    wanted = set().union(*(series_names(e) for e in exprs))
    port = free_port()
    stack = make_stack(KEEL_METRICS_PORT=str(port))
    await stack.start_worker()
    await stack.start_api()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        confident = await start_run(http, CONFIDENT)
        unsure = await start_run(http, UNSURE)
        # The assistant's `flaky_lookup` tool fails its first two attempts on purpose.
        body: dict[str, Any] = {
            "agent": "assistant",
            "input": {"message": "flaky lookup of order-7"},
        }
        flaky = (await http.post("/v1/runs", json=body)).json()
        review = (await wait_status(http, unsure["run_id"], {"awaiting_review"}))["pending_review"]
        decided = await http.post(
            f"/v1/reviews/{review['review_id']}/decision",
            json={"action": "approve", "action_hash": review["action_hash"]},
        )
        assert decided.status_code == 200, decided.text
        for run in (confident, unsure, flaky):
            await wait_status(http, run["run_id"], {"completed"})
        exported: set[str] = set()

        async def all_there() -> bool:
            exported.clear()
            exported.update(await _exported(f"http://127.0.0.1:{port}/metrics"))
            exported.update(await _exported(f"{stack.api_url}/metrics"))
            return wanted <= exported

        with contextlib.suppress(AssertionError):  # then name what is missing
            await eventually(all_there)
        missing = wanted - exported
        assert not missing, (
            missing,
            sorted(n for n in exported if n.startswith(("keel", "temporal_workflow"))),
        )
