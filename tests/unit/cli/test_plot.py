"""The pure-Python PNG writer and the risk/coverage chart drawn with it."""

import struct
import zlib

import pytest

from cli.plot import COLOURS, Canvas, risk_coverage_png, y_max
from keel.schemas.calibration import Scores
from keel.schemas.evaluation import CurvePoint, Evaluation, GroupScores

WHITE = (255, 255, 255)


def _decode(png: bytes) -> tuple[int, int, list[list[tuple[int, int, int]]]]:
    """Width, height and rows of pixels of an 8-bit RGB PNG, every chunk's CRC checked."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    at, chunks = 8, []
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind, data = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", png[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + data), kind
        chunks.append((kind, data))
        at += 12 + length
    kinds = [kind for kind, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, interlace) == (8, 2, 0)
    raw = zlib.decompress(b"".join(data for kind, data in chunks if kind == b"IDAT"))
    stride = 1 + 3 * width
    assert len(raw) == height * stride
    rows = []
    for y in range(height):
        row = raw[y * stride : (y + 1) * stride]
        assert row[0] == 0  # filter type None
        rows.append([tuple(row[1 + 3 * x : 4 + 3 * x]) for x in range(width)])
    return width, height, rows


def test_the_writer_makes_a_valid_png_of_the_canvas() -> None:
    canvas = Canvas(7, 5)
    canvas.line((0, 0), (6, 4), (255, 0, 0))
    canvas.dot(6, 0, (0, 0, 255), size=3)  # clipped at the corner
    width, height, rows = _decode(canvas.png())
    assert (width, height) == (7, 5)
    assert rows[0][0] == rows[4][6] == (255, 0, 0)  # both ends of the line
    assert rows[2][3] == (255, 0, 0)  # and its middle
    assert rows[0][6] == rows[1][5] == (0, 0, 255)
    assert rows[4][0] == WHITE
    assert [canvas.pixel(x, 2) for x in (3, 0)] == [(255, 0, 0), WHITE]
    with pytest.raises(ValueError, match="positive size"):
        Canvas(0, 5)


def _evaluation(curve: list[tuple[float, float]], answered: int) -> Evaluation:
    scores = Scores(
        threshold=0.5, true_positives=0, false_positives=0, false_negatives=0, true_negatives=10
    )
    overall = GroupScores(
        group="all",
        questions=10,
        escalation=scores,
        sent=answered,
        sent_wrong=0,
        sent_incomplete=0,
        answerable=10,
        answerable_sent=answered,
    )
    return Evaluation(
        config="c",
        agent="a",
        labelled="f",
        threshold=0.5,
        groups=[overall],
        routes=[],
        models=[],
        curve=[CurvePoint(threshold=0.5, answered=a, wrong_sent=w) for a, w in curve],
        questions=[],
    )


def test_the_chart_draws_each_curve_in_its_colour_on_axes_of_the_right_size() -> None:
    first = _evaluation([(0.1, 0.0), (0.5, 0.05), (1.0, 0.1)], answered=5)
    second = _evaluation([(0.2, 0.0), (0.9, 0.0)], answered=9)
    assert y_max([first, second]) == 0.1
    assert y_max([_evaluation([(1.0, 0.3)], answered=10)]) == 0.5
    width, height, rows = _decode(risk_coverage_png([first, second], width=200, height=100))
    assert (width, height) == (200, 100)
    # Plot area: x from 30 to 169 (share answered 0…1), y from 69 (rate 0) up to 30 (0.1).
    assert rows[69][30] == (0, 0, 0)  # the origin, on both axes
    assert rows[49][100] == COLOURS[0]  # (0.5, 0.05): on the first curve
    assert rows[69][100] == COLOURS[0]  # (0.5, 0.0): the first configuration's square
    assert rows[69][155] == COLOURS[1]  # (0.9, 0.0): the second curve's square
    assert rows[30][169] == COLOURS[0]  # (1.0, 0.1): the first curve's end, top right
    colours = {pixel for row in rows for pixel in row}
    assert {COLOURS[0], COLOURS[1], (0, 0, 0), WHITE} <= colours
