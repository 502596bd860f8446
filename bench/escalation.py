"""Scenario 8: when does the `support` agent ask a person? Escalation precision and recall.

The labelled set (`tests/data/support_labelled.jsonl`) holds support questions, each marked
answerable from the Quillpad help centre or not: paraphrases, typos, off-topic requests and
plausible product questions the articles do not cover. Every question is one real
`support` run (`cli.labelled.observe_labelled`) on the installed agent and its default
escalation policy, keyless `local` model. Escalating is the positive: an unanswerable
question should reach a person (recall), and a person should only see questions that need
one (precision). The set is split in halves, `tune` and `holdout`: the local provider's
confidence heuristic may only be adjusted while looking at `tune`, and `holdout` says
whether that generalises. Target at the default threshold: precision ≥ 0.9, recall ≥ 0.95.

`python -m bench.escalation` runs this scenario alone.
"""

import asyncio
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench._harness import Options, dev_server, progress, scenario_arguments
from cli.devserver import DevServer
from cli.labelled import observe_labelled
from keel.calibration import agent_threshold, load_labelled, score, suggest_threshold
from keel.schemas.calibration import Observation, Scores
from keel.settings import Settings

__all__ = ["LABELLED", "TARGET_PRECISION", "TARGET_RECALL", "Escalation", "run"]

LABELLED = Path(__file__).resolve().parents[1] / "tests" / "data" / "support_labelled.jsonl"
"""The labelled support questions."""
TARGET_PRECISION = 0.9
TARGET_RECALL = 0.95


@dataclass(frozen=True)
class Escalation:
    """The support agent's escalations on the labelled set, at its default threshold."""

    threshold: float
    observations: list[Observation]

    def _part(self, split: str | None) -> list[Observation]:
        return [o for o in self.observations if split is None or o.split == split]

    def render(self) -> str:
        """Precision and recall per half, and the threshold the tuning half suggests."""
        lines = [
            f"Escalation of `support` on {len(self.observations)} labelled questions "
            f"({sum(o.needed_person for o in self.observations)} unanswerable from the help "
            f"centre), default threshold {self.threshold:.2f}, local model:",
            "",
            "| questions | n | precision | recall | escalated: needed + not | missed |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, split in (("all", None), ("tune half", "tune"), ("held-out half", "holdout")):
            part = self._part(split)
            lines.append(_row(name, len(part), score(part, self.threshold)))
        met = score(self.observations, self.threshold)
        ok = (met.precision or 0) >= TARGET_PRECISION and (met.recall or 0) >= TARGET_RECALL
        lines += [
            "",
            f"Target: precision ≥ {TARGET_PRECISION}, recall ≥ {TARGET_RECALL} "
            f"({'met' if ok else 'not met'} on all questions).",
        ]
        suggested = suggest_threshold(self._part("tune"), TARGET_RECALL)
        if suggested is not None:
            held = score(self._part("holdout"), suggested.threshold)
            lines.append(
                f"Threshold for recall ≥ {TARGET_RECALL} on the tune half: "
                f"{suggested.threshold:.3f} (tune precision {_ratio(suggested.precision)}); "
                f"on the held-out half it gives precision {_ratio(held.precision)}, "
                f"recall {_ratio(held.recall)}."
            )
        return "\n".join(lines)


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _row(name: str, n: int, s: Scores) -> str:
    return (
        f"| {name} | {n} | {_ratio(s.precision)} | {_ratio(s.recall)} | "
        f"{s.true_positives} + {s.false_positives} | {s.false_negatives} |"
    )


async def run(opts: Options, server: DevServer) -> Escalation:
    """Run every labelled question through the support agent on `server`."""
    del opts  # the labelled set fixes the number of runs
    questions = load_labelled(LABELLED)
    progress(f"escalation: {len(questions)} labelled support questions")
    with tempfile.TemporaryDirectory(prefix="keel-bench-escalation-") as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            temporal_address=server.address,
            task_queue=f"bench-{uuid.uuid4()}",
        )
        observations = await observe_labelled(settings, "support", questions)
    return Escalation(agent_threshold(settings, "support"), observations)


async def _main() -> None:
    async with dev_server(tuned=True) as server:
        result = await run(Options(), server)
    sys.stdout.write(result.render() + "\n")


if __name__ == "__main__":
    scenario_arguments(__spec__.name, __doc__)
    asyncio.run(_main())
