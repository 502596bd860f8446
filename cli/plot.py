"""The risk/coverage plot of `keel eval`, drawn and written as PNG in plain Python.

A plotting library would be a heavy dependency for one chart of lines, so `Canvas` draws
lines and squares on an RGB raster and `Canvas.png` encodes it (8-bit truecolour, one
zlib-compressed IDAT chunk, filter 0 on every row). The chart has no text: the x axis is the
share answered without review (0 to 1), the y axis the wrong-sent rate (0 to `y_max`), with
grid lines every tenth of each; the legend is in the report beside it.
"""

import struct
import zlib
from collections.abc import Sequence

from keel.schemas.evaluation import Evaluation

__all__ = ["COLOURS", "Canvas", "risk_coverage_png", "y_max"]

Colour = tuple[int, int, int]

COLOURS: tuple[Colour, ...] = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40))
"""One colour per configuration, in order (blue, orange, green, red)."""
_GRID: Colour = (225, 225, 225)
_AXIS: Colour = (0, 0, 0)
_MARGIN = 30


class Canvas:
    """A white RGB raster, (0, 0) at the top left."""

    def __init__(self, width: int, height: int) -> None:
        """A blank `width` × `height` canvas."""
        if width <= 0 or height <= 0:
            raise ValueError(f"a canvas needs a positive size, got {width}×{height}")
        self.width, self.height = width, height
        self._pixels = bytearray(b"\xff" * (3 * width * height))

    def pixel(self, x: int, y: int) -> Colour:
        """The colour at (`x`, `y`)."""
        at = 3 * (y * self.width + x)
        return self._pixels[at], self._pixels[at + 1], self._pixels[at + 2]

    def dot(self, x: int, y: int, colour: Colour, size: int = 1) -> None:
        """A `size` × `size` square centred on (`x`, `y`), clipped to the canvas."""
        for dy in range(-(size // 2), size - size // 2):
            for dx in range(-(size // 2), size - size // 2):
                px, py = x + dx, y + dy
                if 0 <= px < self.width and 0 <= py < self.height:
                    at = 3 * (py * self.width + px)
                    self._pixels[at : at + 3] = bytes(colour)

    def line(
        self, start: tuple[int, int], end: tuple[int, int], colour: Colour, size: int = 1
    ) -> None:
        """A straight line (Bresenham's), `size` pixels thick."""
        (x, y), (x1, y1) = start, end
        dx, dy = abs(x1 - x), -abs(y1 - y)
        sx, sy = (1 if x < x1 else -1), (1 if y < y1 else -1)
        error = dx + dy
        while True:
            self.dot(x, y, colour, size)
            if (x, y) == (x1, y1):
                return
            twice = 2 * error
            if twice >= dy:
                error, x = error + dy, x + sx
            if twice <= dx:
                error, y = error + dx, y + sy

    def png(self) -> bytes:
        """The canvas as a PNG file."""
        stride = 3 * self.width
        rows = b"".join(
            b"\x00" + bytes(self._pixels[y * stride : (y + 1) * stride]) for y in range(self.height)
        )
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(rows, 9))
            + _chunk(b"IEND", b"")
        )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def y_max(evaluations: Sequence[Evaluation]) -> float:
    """The top of the y axis: the smallest of 0.1, 0.2, 0.5 and 1 above every plotted rate."""
    rates = [p.wrong_sent or 0.0 for e in evaluations for p in e.curve]
    return next(top for top in (0.1, 0.2, 0.5, 1.0) if max(rates, default=0.0) <= top)


def risk_coverage_png(
    evaluations: Sequence[Evaluation], width: int = 640, height: int = 480
) -> bytes:
    """The risk/coverage chart as PNG bytes.

    Each configuration's curve is drawn in its colour (`COLOURS`, in order), and the point
    its own threshold gave as a square.
    """
    canvas = Canvas(width, height)
    top = y_max(evaluations)
    right, bottom = width - 1 - _MARGIN, height - 1 - _MARGIN

    def at(answered: float, wrong: float) -> tuple[int, int]:
        x = _MARGIN + round(answered * (right - _MARGIN))
        return x, bottom - round(min(wrong, top) / top * (bottom - _MARGIN))

    for tenth in range(11):
        canvas.line(at(tenth / 10, 0), at(tenth / 10, top), _GRID)
        canvas.line(at(0, tenth * top / 10), at(1, tenth * top / 10), _GRID)
    canvas.line(at(0, 0), at(1, 0), _AXIS, 2)
    canvas.line(at(0, 0), at(0, top), _AXIS, 2)
    for evaluation, colour in zip(evaluations, COLOURS, strict=False):
        points = [at(p.answered, p.wrong_sent or 0.0) for p in evaluation.curve]
        for start, end in zip(points, points[1:], strict=False):
            canvas.line(start, end, colour, 2)
    for evaluation, colour in zip(evaluations, COLOURS, strict=False):  # squares on top
        overall = evaluation.groups[0]
        if overall.answered is not None:
            canvas.dot(*at(overall.answered, overall.wrong_sent_rate or 0.0), colour, 9)
    return canvas.png()
