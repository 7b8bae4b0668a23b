"""SVG drawing primitives: text, shapes, legends and the document around them.

No plotting library: the report host must stay light (pandas and the contract only).
Output is deterministic (fixed formatting, coordinates rounded to 0.1 px, no ids from
randomness), so two reports of the same run are byte-identical and diff cleanly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

SVG_NS = "http://www.w3.org/2000/svg"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
GRID, AXIS = "#e3e3e3", "#333"


def r(x: float) -> str:
    """Coordinates rounded to 0.1 px: enough precision, and stable text across platforms."""
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def text(x: float, y: float, content: str, **attrs: str) -> str:
    """A text element; attribute names take dashes for underscores (text_anchor)."""
    extra = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in attrs.items())
    return f'<text x="{r(x)}" y="{r(y)}"{extra}>{escape(content)}</text>'


def rect(x: float, y: float, width: float, height: float, fill: str) -> str:
    return f'<rect x="{r(x)}" y="{r(y)}" width="{r(width)}" height="{r(height)}" fill="{fill}"/>'


def background(width: int, height: int) -> str:
    return f'<rect width="{width}" height="{height}" fill="#fff"/>'


def line(x1: float, y1: float, x2: float, y2: float, stroke: str) -> str:
    return f'<line x1="{r(x1)}" y1="{r(y1)}" x2="{r(x2)}" y2="{r(y2)}" stroke="{stroke}"/>'


def header(width: int, title: str, subtitle: str = "") -> list[str]:
    """The title (also the document's accessible name) and a grey subtitle under it."""
    parts = [
        f"<title>{escape(title)}</title>",
        text(width / 2, 24, title, text_anchor="middle", font_size="15", font_weight="600"),
    ]
    if subtitle:
        parts.append(
            text(width / 2, 43, subtitle, text_anchor="middle", font_size="11", fill="#555")
        )
    return parts


def swatch_width(label: str) -> float:
    """A legend entry's width from its label: no font metrics without a browser, so estimate."""
    return 22 + 7 * len(label)


def swatch(x: float, y: float, color: str, label: str) -> list[str]:
    return [rect(x, y - 10, 12, 12, color), text(x + 17, y, label, font_size="12")]


def legend_row(entries: Sequence[tuple[str, str]], center: float, y: float) -> list[str]:
    """(label, colour) swatches on one line, centred."""
    x = center - sum(swatch_width(label) for label, _ in entries) / 2
    parts = []
    for label, color in entries:
        parts += swatch(x, y, color, label)
        x += swatch_width(label)
    return parts


def legend_wrapped(
    entries: Sequence[tuple[str, str]], left: float, right: float, y: float
) -> tuple[list[str], float]:
    """Swatches from ``left``, wrapped before ``right``; returns them and the last line's y."""
    parts, x = [], float(left)
    for label, color in entries:
        w = swatch_width(label)
        if x + w > right:
            x, y = float(left), y + 20
        parts += swatch(x, y, color, label)
        x += w
    return parts, y


def nice_step(span: float, target_ticks: int = 5) -> float:
    """A 1/2/2.5/5 x 10^k tick step giving about ``target_ticks`` intervals."""
    raw = span / target_ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def tick_text(value: float) -> str:
    return f"{round(value, 10):g}"


def fmt_auto(value: float) -> str:
    """About three significant digits: latencies span 0.1 ms to hundreds of ms."""
    magnitude = abs(value)
    decimals = 0 if magnitude >= 100 else 1 if magnitude >= 10 else 2 if magnitude >= 1 else 3
    return f"{value:,.{decimals}f}"


def fmt_fixed(decimals: int) -> Callable[[float], str]:
    return lambda value: f"{value:,.{decimals}f}"


def document(width: int, height: int, parts: Sequence[str]) -> str:
    """A complete SVG document (also valid inline in HTML5)."""
    return (
        f'<svg xmlns="{SVG_NS}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="{escape(FONT)}">\n'
        + "\n".join(parts)
        + "\n</svg>\n"
    )
