"""The experiment report: one document model of typed blocks, rendered as Markdown and as HTML (inline SVG).

A section holds blocks: Paragraph, Callout (a banner: simulated data, an alert, a warning, a note), Bullets,
Table and Chart. Each renderer dispatches on the block's type; nothing is inferred from the wording.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field


@dataclass
class Paragraph:
    text: str


@dataclass
class Callout:
    """A banner. level: 'simulated' | 'alert' | 'warning' | 'note'; title in bold, then the text."""
    title: str
    text: str
    level: str = "note"


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    headers: list[str]
    rows: list[list]


@dataclass
class Chart:
    svg: str
    caption: str


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)  # Paragraph | Callout | Bullets | Table | Chart (a str is a Paragraph)


def fmt(value, kind: str = "") -> str:
    """Numbers as a reader wants them: rates and lifts in %, p-values to 4 places."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and math.isinf(value):
        return "+∞" if value > 0 else "−∞"
    if kind == "pct":
        return f"{value * 100:+.1f}%" if value else "0.0%"
    if kind == "rate":
        return f"{value * 100:.2f}%"
    if kind == "p":
        return "<0.0001" if value < 1e-4 else f"{value:.4f}"
    if isinstance(value, float):
        return f"{value:,.3f}"
    return str(value)


def _md_block(b) -> list[str]:
    if isinstance(b, Table):
        return (["| " + " | ".join(b.headers) + " |", "|" + "---|" * len(b.headers)]
                + ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in b.rows])
    if isinstance(b, Chart):
        return [f"*Chart: {b.caption} (see report.html)*"]
    if isinstance(b, Callout):
        return [f"> **{b.title}** {b.text}"]
    if isinstance(b, Bullets):
        return [f"- {item}" for item in b.items]
    return [b.text if isinstance(b, Paragraph) else str(b)]


def to_markdown(title: str, sections: list[Section]) -> str:
    out = [f"# {title}", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        for b in s.blocks:
            out += _md_block(b) + [""]
    return "\n".join(out)


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.callout{padding:.6em 1em;margin:1em 0}
.simulated,.warning{background:#fff3cd;border:1px solid #e0c36b}.alert{background:#f8d7da;border:1px solid #d9534f}
.note{background:#eef4fb;border:1px solid #9cb8d9}figure{margin:1em 0}ul{margin:.2em 0}"""


def _html_block(b) -> str:
    esc = html.escape
    if isinstance(b, Table):
        head = "".join(f"<th>{esc(str(h))}</th>" for h in b.headers)
        body = "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in r) + "</tr>" for r in b.rows)
        return f"<table><tr>{head}</tr>{body}</table>"
    if isinstance(b, Chart):
        return f"<figure>{b.svg}<figcaption>{esc(b.caption)}</figcaption></figure>"
    if isinstance(b, Callout):
        return f"<div class='callout {esc(b.level)}'><strong>{esc(b.title)}</strong> {esc(b.text)}</div>"
    if isinstance(b, Bullets):
        return "<ul>" + "".join(f"<li>{esc(item)}</li>" for item in b.items) + "</ul>"
    return f"<p>{esc(b.text if isinstance(b, Paragraph) else str(b))}</p>"


def to_html(title: str, sections: list[Section]) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        parts += [_html_block(b) for b in s.blocks]
    parts.append("</body></html>")
    return "\n".join(parts)


def _text_width(text: str, size: float) -> float:
    return 0.6 * size * len(text)  # a conservative width for a sans-serif font (digits ~0.55 em)


def forest_chart(rows: list[dict], label_key: str = "label") -> str:
    """Relative lift with its CI per row, zero line marked: a forest plot in plain SVG.

    Every row is drawn: a finite interval as a line and a dot; an interval open at one end runs to the edge
    with an arrow; a row whose lift is undefined shows its `reason` instead. Every label sits in its own
    column inside the picture, sized from its text, so no label is cut."""
    def finite(*vals):
        return all(isinstance(v, (int, float)) and math.isfinite(v) for v in vals)

    values = [v for r in rows for v in (r.get("rel_lift"), r.get("lo"), r.get("hi")) if finite(v)]
    if not rows:
        return "<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'></svg>"
    lo = min(values + [0.0])
    hi = max(values + [0.0])
    span = (hi - lo) or 1.0
    lo, hi = lo - 0.03 * span, hi + 0.03 * span
    texts = [_value_text(r) for r in rows]
    label_w = max(_text_width(str(r[label_key]), 12) for r in rows) + 12
    value_w = max(_text_width(t, 11) for t in texts) + 12
    plot_w, row_h = 420, 22
    left, right = label_w, label_w + plot_w
    width = int(right + value_w)
    x = lambda v: left + (v - lo) / (hi - lo) * plot_w  # noqa: E731
    height = row_h * len(rows) + 34
    items = [f"<line x1='{x(0):.1f}' y1='4' x2='{x(0):.1f}' y2='{height - 22}' stroke='#888' stroke-dasharray='3'/>"]
    for i, (r, text) in enumerate(zip(rows, texts)):
        y = 15 + i * row_h
        sig = r.get("significant")
        color = "#1a7f37" if sig and finite(r.get("rel_lift")) and r["rel_lift"] > 0 else "#c62828" if sig else "#555"
        items.append(f"<text x='4' y='{y + 4}' font-size='12'>{html.escape(str(r[label_key]))}</text>")
        if finite(r.get("rel_lift")):
            a = x(r["lo"]) if finite(r.get("lo")) else left
            b = x(r["hi"]) if finite(r.get("hi")) else right
            items.append(f"<line x1='{a:.1f}' y1='{y}' x2='{b:.1f}' y2='{y}' stroke='{color}' stroke-width='2'/>")
            for edge, open_end, d in ((a, not finite(r.get("lo")), 1), (b, not finite(r.get("hi")), -1)):
                if open_end:  # an interval without this end: an arrow at the edge of the plot
                    items.append(f"<path d='M{edge:.1f},{y} l{6 * d},-4 l0,8 z' fill='{color}'/>")
            items.append(f"<circle cx='{x(r['rel_lift']):.1f}' cy='{y}' r='4' fill='{color}'/>")
        items.append(f"<text x='{right + 8:.1f}' y='{y + 4}' font-size='11' fill='#444'>{html.escape(text)}</text>")
    for v in (lo, 0.0, hi):
        items.append(f"<text x='{x(v):.1f}' y='{height - 8}' font-size='10' text-anchor='middle'>{v * 100:+.0f}%</text>")
    return f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>{''.join(items)}</svg>"


def _value_text(r: dict) -> str:
    rel = r.get("rel_lift")
    if not (isinstance(rel, (int, float)) and math.isfinite(rel)):
        return r.get("reason") or "relative lift undefined"
    if not all(isinstance(r.get(k), (int, float)) and math.isfinite(r[k]) for k in ("lo", "hi")):
        return f"{fmt(rel, 'pct')} [{fmt(r.get('lo'), 'pct')}, {fmt(r.get('hi'), 'pct')}] " + (r.get("reason") or "")
    return f"{fmt(rel, 'pct')} [{fmt(r['lo'], 'pct')}, {fmt(r['hi'], 'pct')}]"


def _tick(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"  # at most 7 characters up to 9,999,999


def bar_chart(items: list[tuple[str, float]], unit: str = "") -> str:
    """Horizontal bars for importances or counts."""
    if not items:
        return "<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'></svg>"
    top = max(v for _, v in items) or 1.0
    left = max(_text_width(label, 12) for label, _ in items) + 12
    width, row_h = int(left + 400 + 70), 20
    rows = []
    for i, (label, v) in enumerate(items):
        y = 5 + i * row_h
        w = max(1.0, v / top * 400)
        rows.append(f"<text x='4' y='{y + 12}' font-size='12'>{html.escape(label)}</text>"
                    f"<rect x='{left:.1f}' y='{y}' width='{w:.1f}' height='14' fill='#3b6ea5'/>"
                    f"<text x='{left + w + 4:.1f}' y='{y + 12}' font-size='11'>{v:.4g}{unit}</text>")
    return f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{row_h * len(items) + 10}'>{''.join(rows)}</svg>"


def line_chart(curves: list[tuple[str, list[float]]], width: int = 380, height: int = 230,
               x_label: str = "share of customers targeted, ranked by predicted effect",
               y_label: str = "incremental outcomes") -> str:
    """Small multiples of a Qini curve against the straight line of random targeting, with both axes:
    x from 0% to 100% of customers, y in outcome units with its range and zero marked."""
    panels = []
    pad_l, pad_r, pad_t, pad_b = 66, 12, 22, 40
    for label, ys in curves:
        if len(ys) < 2:
            continue
        lo, hi = min(min(ys), 0.0), max(max(ys), 0.0)
        span = (hi - lo) or 1.0
        px = lambda k: pad_l + k / (len(ys) - 1) * (width - pad_l - pad_r)  # noqa: E731
        py = lambda v: height - pad_b - (v - lo) / span * (height - pad_t - pad_b)  # noqa: E731
        path = " ".join(f"{px(k):.1f},{py(v):.1f}" for k, v in enumerate(ys))
        ticks = "".join(f"<text x='{pad_l - 4}' y='{py(v) + 3:.1f}' font-size='9' text-anchor='end'>{_tick(v)}</text>"
                        for v in sorted({lo, 0.0, hi}))
        xticks = "".join(f"<text x='{px(f * (len(ys) - 1)):.1f}' y='{height - pad_b + 12}' font-size='9' "
                         f"text-anchor='middle'>{f:.0%}</text>" for f in (0, 0.25, 0.5, 0.75, 1))
        panels.append(
            f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' style='margin:4px;border:1px solid #eee'>"
            f"<text x='{pad_l}' y='14' font-size='12'>{html.escape(label)}</text>"
            f"<line x1='{pad_l}' y1='{pad_t}' x2='{pad_l}' y2='{height - pad_b}' stroke='#333'/>"
            f"<line x1='{pad_l}' y1='{height - pad_b}' x2='{width - pad_r}' y2='{height - pad_b}' stroke='#333'/>"
            f"<line x1='{pad_l}' y1='{py(0):.1f}' x2='{width - pad_r}' y2='{py(0):.1f}' stroke='#ccc'/>"
            f"{ticks}{xticks}"
            f"<line x1='{px(0):.1f}' y1='{py(ys[0]):.1f}' x2='{px(len(ys) - 1):.1f}' y2='{py(ys[-1]):.1f}' stroke='#999' stroke-dasharray='4'/>"
            f"<polyline fill='none' stroke='#3b6ea5' stroke-width='2' points='{path}'/>"
            f"<text x='{(pad_l + width - pad_r) / 2:.1f}' y='{height - 8}' font-size='10' text-anchor='middle'>{html.escape(x_label)}</text>"
            f"<text x='11' y='{(pad_t + height - pad_b) / 2:.1f}' font-size='10' text-anchor='middle' "
            f"transform='rotate(-90 11 {(pad_t + height - pad_b) / 2:.1f})'>{html.escape(y_label)}</text></svg>")
    return "".join(panels) or "<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'></svg>"
