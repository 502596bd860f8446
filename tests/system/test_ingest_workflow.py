"""`IngestWorkflow` on a real worker process: killed mid-ingestion, it resumes and ends
with the same index as an uninterrupted ingestion of the same documents.

Embeddings come from the wire server through the OpenAI SDK; each batch's request is
slowed down so the kill lands while a batch is in flight.
"""

import asyncio
import json
import signal
from typing import Any

import pytest
from sqlmodel import select
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from keel.db import create_engine, session_factory
from keel.retrieval_tables import ChunkRow, CollectionRow, StagedDocumentRow
from keel.schemas.retrieval import (
    CollectionRef,
    CollectionSpec,
    DocumentIn,
    IngestInput,
    SearchQuery,
)
from keel.settings import Settings
from keel.temporal.connection import connect
from keel.testing.replies import Reply
from keel.testing.server import WireServer
from keel.testing.stack import Stack
from workflows.ingest import IngestWorkflow
from workflows.retrieval import CollectionStatsWorkflow, CreateCollectionWorkflow, SearchWorkflow

TOPICS = ["password", "invoice", "sync", "export", "share", "calendar", "backup", "theme"]
DOCUMENTS = [
    DocumentIn(
        id=f"doc-{n:02d}",
        title=f"About {TOPICS[n % 8]} number {n}",
        text=f"# Part {n}\n\nHow to {TOPICS[n % 8]} things, case {n}.\n\n"
        f"## Details\n\nStep {n}: open settings and choose {TOPICS[(n + 3) % 8]}.",
        format="markdown",
        metadata={"n": n},
    )
    for n in range(30)
]
BATCH = 5


async def _stage(stack: Stack, upload_id: str) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{stack.db_file}")
    async with session_factory(engine)() as session:
        for seq, document in enumerate(DOCUMENTS):
            session.add(
                StagedDocumentRow(
                    upload_id=upload_id, seq=seq, document=document.model_dump(mode="json")
                )
            )
        await session.commit()
    await engine.dispose()


async def _chunks(stack: Stack, collection_uid: str) -> list[tuple[Any, ...]]:
    engine = create_engine(f"sqlite+aiosqlite:///{stack.db_file}")
    async with session_factory(engine)() as session:
        rows = await session.exec(
            select(ChunkRow).where(ChunkRow.collection_uid == collection_uid).order_by(ChunkRow.id)  # type: ignore[arg-type]
        )
        found = [(r.id, r.title, r.text, r.content_hash, r.flags) for r in rows]
    await engine.dispose()
    return found


async def _uid(stack: Stack, name: str) -> str:
    engine = create_engine(f"sqlite+aiosqlite:///{stack.db_file}")
    async with session_factory(engine)() as session:
        row = (await session.exec(select(CollectionRow).where(CollectionRow.name == name))).one()
    await engine.dispose()
    return row.uid


async def test_a_killed_ingestion_resumes_and_builds_the_same_index(make_stack) -> None:
    async with WireServer() as wire:
        # Every embeddings request of the first ingestion takes a second.
        wire.push(*[Reply.slow(1.0)] * (len(DOCUMENTS) // BATCH), model="keel-embed")
        deployments = {
            "embed": {
                "provider": "openai_compatible",
                "model": "keel-embed",
                "base_url": wire.openai_base_url,
                "price": {"input": 0.0, "output": 0.0},
                "timeout_s": 10,
            }
        }
        stack = make_stack(KEEL_DEPLOYMENTS=json.dumps(deployments))
        worker = await stack.start_worker()
        client = await connect(
            Settings(temporal_address=stack.temporal_address, data_dir=stack.data_dir)
        )

        async def run(workflow: Any, arg: Any, workflow_id: str) -> Any:
            return await client.execute_workflow(
                workflow, arg, id=workflow_id, task_queue=stack.task_queue
            )

        for name in ("killed", "calm"):
            spec = CollectionSpec(name=name, embedding="embed")
            await run(CreateCollectionWorkflow.run, spec, f"create-{name}")
            await _stage(stack, f"upload-{name}")

        handle = await client.start_workflow(
            IngestWorkflow.run,
            IngestInput(collection="killed", upload_id="upload-killed", total=30, batch_size=BATCH),
            id="ingest-killed",
            task_queue=stack.task_queue,
        )
        for _ in range(400):  # until the third batch's embeddings request is in flight
            if len(wire.requests) >= 3:
                break
            await asyncio.sleep(0.05)
        progress = await handle.query(IngestWorkflow.progress)
        assert progress is not None and 0 < progress.done < 30
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        await stack.start_worker()
        killed = await asyncio.wait_for(handle.result(), timeout=120)

        calm = await run(
            IngestWorkflow.run,
            IngestInput(collection="calm", upload_id="upload-calm", total=30, batch_size=BATCH),
            "ingest-calm",
        )

        assert (killed.done, killed.total, killed.finished) == (30, 30, True)
        assert killed.indexed + killed.unchanged == 30 and killed.duplicates == 0
        assert calm.indexed == 30 and calm.chunks == 60
        stats = [
            await run(CollectionStatsWorkflow.run, CollectionRef(collection=c), f"stats-{c}")
            for c in ("killed", "calm")
        ]
        assert [(s.documents, s.chunks, s.dimensions) for s in stats] == [(30, 60, 1536)] * 2
        uids = [await _uid(stack, c) for c in ("killed", "calm")]
        assert await _chunks(stack, uids[0]) == await _chunks(stack, uids[1])
        for query in ("password settings", "step 7 backup", "theme"):
            found = [
                await run(
                    SearchWorkflow.run,
                    SearchQuery(collection=c, query=query, k=5),
                    f"search-{c}-{query}",
                )
                for c in ("killed", "calm")
            ]
            assert [(p.id, round(p.score, 6)) for p in found[0].passages] == [
                (p.id, round(p.score, 6)) for p in found[1].passages
            ]
            assert found[0].method == "hybrid" and len(found[0].passages) == 5
        # An unknown collection fails the workflow at once, with a typed cause.
        with pytest.raises(WorkflowFailureError) as caught:
            await run(SearchWorkflow.run, SearchQuery(collection="nope", query="x"), "search-404")
        cause = caught.value.cause.cause
        assert isinstance(cause, ApplicationError) and cause.type == "UnknownCollection"
        # Staged documents are gone once indexed.
        engine = create_engine(f"sqlite+aiosqlite:///{stack.db_file}")
        async with session_factory(engine)() as session:
            assert (await session.exec(select(StagedDocumentRow))).all() == []
        await engine.dispose()
