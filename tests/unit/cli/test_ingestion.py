"""`keel ingest`'s progress on a terminal."""

import io

from cli.ingestion import ProgressPrinter


def test_progress_is_a_bar_on_a_terminal() -> None:
    out = io.StringIO()
    printer = ProgressPrinter(out, as_json=False, tty=True)

    printer.step("indexing", 0, 4)
    printer.step("indexing", 2, 4)
    printer.step("indexing", 2, 4)

    frames = out.getvalue().split("\r")[1:]
    assert frames == [
        f"indexing  [{'-' * 30}] 0/4 documents",
        f"indexing  [{'#' * 15}{'-' * 15}] 2/4 documents",
    ]
