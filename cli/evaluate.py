"""`keel eval AGENT --labelled FILE`: how an agent does on a labelled set, run for real.

Every question is a real run on a throwaway embedded stack (`cli.labelled`), and the report
(`keel.evaluation`) gives, per category and overall: escalation precision and recall, the
wrong-sent rate (answers sent without review that needed a person or miss a key fact) with
its interval, the share answered without review, and cost and latency per route. Two
configurations run side by side, each on a stack of its own: `--compare FILE` (the
configured settings against them with FILE's top-level keys replacing theirs), or
`--config A --config B`. `--out DIR` writes the report as Markdown and JSON, and the
risk/coverage chart as PNG.
"""

import argparse
import asyncio
import json
import sys
import tomllib
from pathlib import Path

from cli.eval_report import PLOT_FILE, render_markdown
from cli.plot import risk_coverage_png
from keel.calibration import agent_threshold, load_labelled
from keel.errors import KeelUserError
from keel.evaluation import evaluate
from keel.schemas.calibration import LabelledQuestion
from keel.schemas.evaluation import Evaluation
from keel.settings import Settings

__all__ = ["COMMAND", "add_parser", "run"]

COMMAND = "eval"
"""The top-level command this module serves."""


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add `eval` to the `keel` parser."""
    parser = sub.add_parser(
        COMMAND, help="run an agent over a labelled set: escalation, wrong answers sent, cost"
    )
    parser.add_argument("agent")
    parser.add_argument(
        "--labelled",
        type=Path,
        required=True,
        help="JSON Lines of {question, answerable[, id, category, key_facts, split]}",
    )
    parser.add_argument("--split", choices=("tune", "test", "holdout"), help="only this split")
    configs = parser.add_mutually_exclusive_group()
    configs.add_argument(
        "--compare", type=Path, metavar="TOML", help="also run with this file's settings"
    )
    configs.add_argument(
        "--config",
        type=Path,
        action="append",
        metavar="TOML",
        help="run with this file's settings (repeat to compare)",
    )
    parser.add_argument("--out", type=Path, help="write eval.md, eval.json and the PNG chart here")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="runs in flight at once (default 4)"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run `keel eval`; its exit code."""
    if args.concurrency < 1:
        raise KeelUserError("--concurrency must be at least 1")
    questions = [
        q for q in load_labelled(args.labelled) if args.split is None or q.split == args.split
    ]
    if not questions:
        raise KeelUserError(f"{args.labelled} has no question in split {args.split!r}")
    configs = _configs(args, settings)
    thresholds = [agent_threshold(config, args.agent) for _, config in configs]
    evaluations = asyncio.run(_evaluate_all(args, configs, thresholds, questions))
    if args.out is not None:
        _write(args.out, evaluations)
    if args.json:
        print(json.dumps([e.model_dump(mode="json") for e in evaluations], indent=2))
    else:
        print(render_markdown(evaluations, plot=args.out is not None), end="")
    return 0


def _configs(args: argparse.Namespace, settings: Settings) -> list[tuple[str, Settings]]:
    """The named settings to run: the configured ones, or each file's over them."""
    if args.config:
        return [(str(path), _overlay(path)) for path in args.config]
    configured = [("configured", settings)]
    return configured + ([(str(args.compare), _overlay(args.compare))] if args.compare else [])


def _overlay(path: Path) -> Settings:
    """The settings with `path`'s top-level keys replacing the configured ones."""
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise KeelUserError(f"cannot read the settings file {path}: {err.strerror}") from err
    except tomllib.TOMLDecodeError as err:
        raise KeelUserError(f"{path} is not TOML: {err}") from err
    return Settings(**values)


async def _evaluate_all(
    args: argparse.Namespace,
    configs: list[tuple[str, Settings]],
    thresholds: list[float],
    questions: list[LabelledQuestion],
) -> list[Evaluation]:
    # A worker's imports are heavy: imported here, `keel eval --help` stays quick.
    from cli.labelled import calibration_stack, quiet_sdk, run_labelled

    quiet_sdk()
    evaluations: list[Evaluation] = []
    for (name, config), threshold in zip(configs, thresholds, strict=True):
        print(
            f"{name}: running {len(questions)} labelled questions on a temporary embedded stack…",
            file=sys.stderr,
        )
        async with calibration_stack(config) as isolated:
            runs = await run_labelled(isolated, args.agent, questions, concurrency=args.concurrency)
        evaluations.append(
            evaluate(
                runs,
                config=name,
                agent=args.agent,
                labelled=str(args.labelled),
                threshold=threshold,
                split=args.split,
            )
        )
    return evaluations


def _write(out: Path, evaluations: list[Evaluation]) -> None:
    """The report as Markdown and JSON, and the chart, in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.md").write_text(render_markdown(evaluations, plot=True), encoding="utf-8")
    dumped = [e.model_dump(mode="json") for e in evaluations]
    (out / "eval.json").write_text(json.dumps(dumped, indent=2) + "\n", encoding="utf-8")
    (out / PLOT_FILE).write_bytes(risk_coverage_png(evaluations))
