"""The retrieval table, Keel's figures beside the collections' reference figures."""

from bench.retrieval.measure import CUTOFF, CollectionRun
from bench.retrieval.reference import Reference

__all__ = ["render"]

_LABELS = {"bm25": "BM25", "dense": "dense", "hybrid": "hybrid (default)"}


def _pair(value: float, reference: float | None) -> str:
    return f"{value:.3f} ({reference:.3f})" if reference is not None else f"{value:.3f} (—)"


def render(runs: list[CollectionRun], references: dict[tuple[str, str], Reference]) -> str:
    """One Markdown table (Keel's figure, the reference's in brackets), then the targets."""
    header = (
        f"| collection | method | nDCG@{CUTOFF} | Recall@{CUTOFF} | MRR@{CUTOFF} "
        "| query p50 / p95 ms (ref p50) | build s (ingestion + index load) | index MB "
        "| docs / chunks "
        "| queries |"
    )
    lines = [header, "|" + "---|" * 10]
    for run in runs:
        for m in run.methods:
            ref = references.get((run.name, m.method))
            lines.append(
                f"| {run.name} | {_LABELS[m.method]} "
                f"| {_pair(m.ndcg, ref and ref.ndcg)} | {_pair(m.recall, ref and ref.recall)} "
                f"| {_pair(m.mrr, ref and ref.mrr)} "
                f"| {m.p50_ms:.1f} / {m.p95_ms:.1f} ({ref.p50 if ref else '—'}) "
                f"| {run.ingest_s + run.index_s:.1f} ({run.ingest_s:.1f} + {run.index_s:.1f}) "
                f"| {run.index_bytes / 2**20:.1f} | {run.documents} / {run.chunks} "
                f"| {run.queries} |"
            )
    notes = [
        "Reference figures in brackets: the collections' README (its hybrid is plain RRF). "
        "Ingestion: `IngestWorkflow` on Keel's worker (stage, batches, index build). "
        "Dense and hybrid latencies are with the query's vector known; a new query adds "
        "its encoding:"
    ]
    notes += [
        f"- {run.name}: new-query encoding p50 {run.encode_p50_ms:.1f} ms, "
        f"p95 {run.encode_p95_ms:.1f} ms (first {len(run.encodings)} queries)"
        for run in runs
        if run.encodings
    ]
    notes += [line for run in runs for line in _targets(run, references)]
    return "\n".join(lines) + "\n\n" + "\n".join(notes)


def _targets(run: CollectionRun, references: dict[tuple[str, str], Reference]) -> list[str]:
    by = {m.method: m for m in run.methods}
    lines = []
    bm25, ref = by["bm25"], references.get((run.name, "bm25"))
    if ref is not None:
        gap = bm25.ndcg - ref.ndcg
        verdict = "within" if abs(gap) <= 0.01 else "outside"
        lines.append(
            f"- {run.name}: BM25 nDCG@{CUTOFF} {gap:+.3f} from the reference ({verdict} 0.01); "
            f"BM25 query p50 {bm25.p50_ms:.1f} ms"
        )
    if "hybrid" in by:
        best = max((by["bm25"], by["dense"]), key=lambda m: m.ndcg)
        verdict = "at or above" if by["hybrid"].ndcg >= best.ndcg else "below"
        lines.append(
            f"- {run.name}: default (hybrid) nDCG@{CUTOFF} {by['hybrid'].ndcg:.3f} is {verdict} "
            f"the best single method ({best.method} {best.ndcg:.3f})"
        )
    return lines
