"""The comparison's chart as a hand-written SVG (no plotting dependency): horizontal bars, one panel per figure."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

COLOURS = {"runner": "#2b7bb9", "arq": "#c8553d", "arq_tuned": "#e39b7b", "saq": "#6a994e", "bare": "#9a9a9a"}
WIDTH, LABEL_W, BAR_H, GAP, PANEL_GAP, VALUE_W = 860, 270, 22, 6, 34, 110


def _panel(y: int, title: str, bars: list[tuple[str, str, float, str]]) -> tuple[list[str], int]:
    out = [f'<text x="10" y="{y + 16}" class="title">{escape(title)}</text>']
    y += 26
    top = max((v for _, _, v, _ in bars), default=1.0) or 1.0
    span = WIDTH - LABEL_W - VALUE_W - 20
    for key, label, value, shown in bars:
        w = max(value / top * span, 1.5)
        out.append(f'<text x="{LABEL_W - 8}" y="{y + BAR_H - 7}" class="label">{escape(label)}</text>')
        out.append(f'<rect x="{LABEL_W}" y="{y}" width="{w:.1f}" height="{BAR_H}" fill="{COLOURS[key]}"/>')
        out.append(f'<text x="{LABEL_W + w + 6:.1f}" y="{y + BAR_H - 7}" class="value">{escape(shown)}</text>')
        y += BAR_H + GAP
    return out, y + PANEL_GAP - GAP


def write_chart(path: Path, t: dict[str, Any], labels: dict[str, str], sizes: dict[str, Any], header_note: str) -> None:
    cells = t["cells"]
    order = ["runner", "arq", "arq_tuned", "saq"]
    panels = [
        (
            f"Drain {sizes['drain']:,} queued no-op jobs, one worker process — jobs/s (higher is better)",
            [(k, labels[k], cells[k]["drain"], f"{cells[k]['drain']:,.0f}") for k in order + ["bare"]],
        ),
        (
            f"{sizes['sleep']:,} × 10 ms jobs, 100 at a time — jobs/s (higher is better)",
            [(k, labels[k], cells[k]["sleep"], f"{cells[k]['sleep']:,.0f}") for k in order],
        ),
        (
            "Pick-up latency of an idle worker, p50 — ms (lower is better)",
            [(k, labels[k], cells[k]["pickup_p50_ms"], f"{cells[k]['pickup_p50_ms']:.1f} ms") for k in order],
        ),
        (
            "Client commands per job while draining (lower is better)",
            [(k, labels[k], cells[k]["client_cmds"], f"{cells[k]['client_cmds']:.2f}") for k in order],
        ),
    ]
    body: list[str] = []
    y = 10
    for title, bars in panels:
        part, y = _panel(y, title, bars)
        body += part
    body.append(
        f'<text x="10" y="{y}" class="note">{escape(header_note)}; medians of {sizes["runs"]} run(s); '
        "valkey on loopback, 2 cores</text>"
    )
    height = y + 14
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, Arial, sans-serif">',
        "<style>.title{font-size:14px;font-weight:bold;fill:#222}.label{font-size:12px;fill:#333;"
        "text-anchor:end}.value{font-size:12px;fill:#222}.note{font-size:11px;fill:#666}</style>",
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        *body,
        "</svg>",
    ]
    path.write_text("\n".join(svg) + "\n")
