"""`keel eval`'s report as Markdown: one table per kind of figure, configurations side by side."""

from collections.abc import Sequence

from cli.plot import COLOURS, y_max
from keel.schemas.evaluation import Evaluation, GroupScores, Interval

__all__ = ["PLOT_FILE", "render_markdown"]

PLOT_FILE = "risk_coverage.png"
"""The risk/coverage chart's file name in `--out`."""


def _share(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _interval(interval: Interval | None) -> str:
    if interval is None:
        return ""
    return f" [{100 * interval.low:.1f}, {100 * interval.high:.1f}]"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], labels: int) -> list[str]:
    """A Markdown table: the first `labels` columns name the row, the others are figures."""
    align = ["---" if i < labels else "---:" for i in range(len(header))]
    return [f"| {' | '.join(cells)} |" for cells in (header, align, *rows)]


def _group_row(scores: GroupScores) -> list[str]:
    escalation = scores.escalation
    return [
        str(scores.questions),
        str(escalation.true_positives + escalation.false_negatives),
        _ratio(escalation.precision),
        _ratio(escalation.recall),
        str(scores.sent),
        f"{scores.sent_wrong} ({scores.sent_incomplete} incomplete)",
        _share(scores.wrong_sent_rate) + _interval(scores.wrong_sent_interval),
        _share(scores.answered),
        _share(scores.answerable_answered),
    ]


def render_markdown(evaluations: Sequence[Evaluation], plot: bool = False) -> str:
    """Every configuration's figures in three tables (and the chart's legend when `plot`)."""
    first = evaluations[0]
    several = len(evaluations) > 1
    split = f"split `{first.split}` of " if first.split else ""
    lines = [
        f"# keel eval {first.agent}: {split}`{first.labelled}`",
        "",
        *(f"- `{e.config}`: escalates below confidence {e.threshold:.3f}" for e in evaluations),
        "",
        "## Escalation and answers sent without review",
        "",
        "Escalating is the positive. *Wrong sent*: answers sent without review to a question "
        "that needed a person or missing a key fact (incomplete); the rate is among answers "
        "sent, with its 95 % Clopper–Pearson interval.",
        "",
    ]
    config = ["config"] if several else []
    header = ["category", *config, "questions", "need a person", "precision", "recall"]
    header += ["sent", "wrong sent", "wrong-sent rate", "answered", "answerable answered"]
    rows = [
        [e.groups[index].group, *([e.config] if several else []), *_group_row(e.groups[index])]
        for index in range(len(first.groups))
        for e in evaluations
    ]
    named = len(config) + 1
    lines += [*_table(header, rows, named), "", "## Cost and latency per route", ""]
    rows = [
        [r.route, *([e.config] if several else []), str(r.runs), f"${r.cost_usd_mean:.6f}"]
        + [f"${r.cost_usd_total:.6f}", f"{r.latency_s_mean:.2f} s"]
        + [f"{r.latency_s_p50:.2f} s", f"{r.latency_s_p95:.2f} s"]
        for e in evaluations
        for r in e.routes
    ]
    header = ["route", *config, "runs", "mean cost", "total cost", "mean latency", "p50", "p95"]
    lines += [*_table(header, rows, named), "", "## Model calls", ""]
    rows = [
        [m.provider, *([e.config] if several else []), m.model, str(m.calls)]
        + [str(m.input_tokens), str(m.output_tokens), f"${m.cost_usd:.6f}"]
        for e in evaluations
        for m in e.models
    ]
    header = ["provider", *config, "model", "calls", "input tokens", "output tokens", "cost"]
    lines += _table(header, rows, named + 1)
    if plot:
        colours = ", ".join(
            f"`{e.config}` rgb{c}" for e, c in zip(evaluations, COLOURS, strict=False)
        )
        lines += [
            "",
            "## Risk and coverage",
            "",
            f"![risk/coverage]({PLOT_FILE})",
            "",
            "x: share answered without review, 0 to 1; y: wrong-sent rate, 0 to "
            f"{y_max(evaluations):g}; grid lines every tenth. One curve per configuration as "
            "the threshold moves over the observed confidences, a square where its own "
            f"threshold is: {colours}.",
        ]
    return "\n".join(lines) + "\n"
