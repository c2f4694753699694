"""The experiment report: one document model rendered as Markdown and as HTML (with inline SVG charts)."""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field


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
    blocks: list = field(default_factory=list)  # str (paragraph) | Table | Chart


def fmt(value, kind: str = "") -> str:
    """Numbers as a reader wants them: rates and lifts in %, p-values to 4 places."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if kind == "pct":
        return f"{value * 100:+.1f}%" if value else "0.0%"
    if kind == "rate":
        return f"{value * 100:.2f}%"
    if kind == "p":
        return "<0.0001" if value < 1e-4 else f"{value:.4f}"
    if isinstance(value, float):
        return f"{value:,.3f}"
    return str(value)


def to_markdown(title: str, sections: list[Section]) -> str:
    out = [f"# {title}", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        for b in s.blocks:
            if isinstance(b, Table):
                out.append("| " + " | ".join(b.headers) + " |")
                out.append("|" + "---|" * len(b.headers))
                out += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in b.rows]
            elif isinstance(b, Chart):
                out.append(f"*Chart: {b.caption} (see report.html)*")
            else:
                out.append(b)
            out.append("")
    return "\n".join(out)


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.banner{background:#fff3cd;border:1px solid #e0c36b;
padding:.6em 1em}.alert{background:#f8d7da;border:1px solid #d9534f;padding:.6em 1em}figure{margin:1em 0}ul{margin:.2em 0}"""


def to_html(title: str, sections: list[Section]) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        for b in s.blocks:
            if isinstance(b, Table):
                head = "".join(f"<th>{html.escape(str(h))}</th>" for h in b.headers)
                body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in b.rows)
                parts.append(f"<table><tr>{head}</tr>{body}</table>")
            elif isinstance(b, Chart):
                parts.append(f"<figure>{b.svg}<figcaption>{html.escape(b.caption)}</figcaption></figure>")
            elif b.startswith("- "):
                parts.append(f"<ul><li>{html.escape(b[2:].replace('**', ''))}</li></ul>")
            else:
                text = html.escape(b.lstrip("> ").replace("**", ""))
                alert = b.startswith(("> **ALERT", "> **WARNING", "> **No reliable"))
                cls = " class='alert'" if alert else " class='banner'" if b.startswith(">") else ""
                parts.append(f"<p{cls}>{text}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def forest_chart(rows: list[dict], label_key: str = "label") -> str:
    """Relative lift with its CI per row, zero line marked: a forest plot in plain SVG."""
    finite = [r for r in rows if all(math.isfinite(r.get(k, math.nan)) for k in ("rel_lift", "lo", "hi"))]
    if not finite:
        return "<svg width='10' height='10'></svg>"
    lo = min(min(r["lo"] for r in finite), 0.0)
    hi = max(max(r["hi"] for r in finite), 0.0)
    span = (hi - lo) or 1.0
    width, left, row_h = 760, 260, 22
    x = lambda v: left + (v - lo) / span * (width - left - 20)  # noqa: E731
    height = row_h * len(finite) + 30
    items = [f"<line x1='{x(0):.1f}' y1='0' x2='{x(0):.1f}' y2='{height - 20}' stroke='#888' stroke-dasharray='3'/>"]
    for i, r in enumerate(finite):
        y = 15 + i * row_h
        color = "#1a7f37" if r.get("significant") and r["rel_lift"] > 0 else "#c62828" if r.get("significant") else "#555"
        items.append(f"<text x='4' y='{y + 4}' font-size='12'>{html.escape(str(r[label_key]))}</text>")
        items.append(f"<line x1='{x(r['lo']):.1f}' y1='{y}' x2='{x(r['hi']):.1f}' y2='{y}' stroke='{color}' stroke-width='2'/>")
        items.append(f"<circle cx='{x(r['rel_lift']):.1f}' cy='{y}' r='4' fill='{color}'/>")
        items.append(f"<text x='{x(r['hi']) + 4:.1f}' y='{y + 4}' font-size='11' fill='#444'>{r['rel_lift'] * 100:+.1f}%</text>")
    for v in (lo, 0.0, hi):
        items.append(f"<text x='{x(v):.1f}' y='{height - 4}' font-size='10' text-anchor='middle'>{v * 100:+.0f}%</text>")
    return f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>{''.join(items)}</svg>"


def bar_chart(items: list[tuple[str, float]], unit: str = "") -> str:
    """Horizontal bars for importances or counts."""
    if not items:
        return "<svg width='10' height='10'></svg>"
    top = max(v for _, v in items) or 1.0
    width, left, row_h = 620, 220, 20
    rows = []
    for i, (label, v) in enumerate(items):
        y = 5 + i * row_h
        w = max(1.0, v / top * (width - left - 70))
        rows.append(f"<text x='4' y='{y + 12}' font-size='12'>{html.escape(label)}</text>"
                    f"<rect x='{left}' y='{y}' width='{w:.1f}' height='14' fill='#3b6ea5'/>"
                    f"<text x='{left + w + 4:.1f}' y='{y + 12}' font-size='11'>{v:.4g}{unit}</text>")
    return f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{row_h * len(items) + 10}'>{''.join(rows)}</svg>"


def line_chart(curves: list[tuple[str, list[float]]], width: int = 360, height: int = 200) -> str:
    """Small multiples of a Qini-style curve against the straight line of random targeting."""
    panels = []
    for i, (label, ys) in enumerate(curves):
        if len(ys) < 2:
            continue
        lo, hi = min(min(ys), 0.0), max(max(ys), 0.0) or 1.0
        span = (hi - lo) or 1.0
        px = lambda k: 10 + k / (len(ys) - 1) * (width - 20)  # noqa: E731
        py = lambda v: height - 25 - (v - lo) / span * (height - 45)  # noqa: E731
        path = " ".join(f"{px(k):.1f},{py(v):.1f}" for k, v in enumerate(ys))
        panels.append(
            f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' style='margin:4px;border:1px solid #eee'>"
            f"<text x='10' y='14' font-size='12'>{html.escape(label)}</text>"
            f"<line x1='{px(0):.1f}' y1='{py(ys[0]):.1f}' x2='{px(len(ys) - 1):.1f}' y2='{py(ys[-1]):.1f}' stroke='#999' stroke-dasharray='4'/>"
            f"<polyline fill='none' stroke='#3b6ea5' stroke-width='2' points='{path}'/>"
            f"<text x='10' y='{height - 8}' font-size='10'>customers ranked by predicted effect →</text></svg>")
    return "".join(panels) or "<svg width='10' height='10'></svg>"
