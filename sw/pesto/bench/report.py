"""Benchmark output: a printed table, CSV + JSON side by side, and PNG plots (all atomic)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from ..util import atomic_write_bytes, atomic_write_text


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isinf(v) or math.isnan(v):
            return str(v)
        return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"
    if isinstance(v, (list, tuple)):
        return "x".join(map(str, v))
    return "" if v is None else str(v)


def table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A markdown table of ``rows`` with (key, header) ``columns``."""
    head = "| " + " | ".join(h for _, h in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(_fmt(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def json_safe(v):
    if isinstance(v, float) and (math.isinf(v) or math.isnan(v)):
        return None
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    return v


def flat_row(row: dict, prefix: str = "") -> dict:
    """One CSV row of plain cells: nested dicts become dotted columns (model_skip.issue), lists
    of numbers 16x16x3x3, anything else nested a JSON cell -- never a Python repr."""
    out = {}
    for k, v in row.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_row(v, key + "."))
        elif isinstance(v, (list, tuple)):
            plain = all(isinstance(x, (int, float, str)) and not isinstance(x, bool) for x in v)
            out[key] = _fmt(v) if plain else json.dumps(json_safe(list(v)))
        else:
            out[key] = v
    return out


def write_results(out_dir: Path, stem: str, rows: list[dict], meta: dict, markdown: str) -> list[Path]:
    """``stem``.json (meta + rows), ``stem``.csv (rows, flat columns) and ``stem``.md (the printed table)."""
    out_dir = Path(out_dir)
    paths = [out_dir / f"{stem}.json", out_dir / f"{stem}.csv", out_dir / f"{stem}.md"]
    atomic_write_text(paths[0], json.dumps(json_safe({**meta, "rows": rows}), indent=2) + "\n")
    buf = io.StringIO()
    flat = [flat_row(r) for r in rows]
    keys = list(dict.fromkeys(k for r in flat for k in r))
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    for r in flat:
        writer.writerow(r)
    atomic_write_text(paths[1], buf.getvalue())
    atomic_write_text(paths[2], markdown + "\n")
    return paths


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def _figure(**kw):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt.subplots(**kw)


def plot_speedups(rows: list[dict], path: Path, title: str, label_key: str = "layer") -> Path:
    """Grouped bars per layer: measured speedup, the ideal G / G_nonzero, and the seed's figure."""
    import numpy as np
    fig, ax = _figure(figsize=(max(6, 0.6 * len(rows) + 3), 4))
    x = np.arange(len(rows))
    series = [("speedup", "pesto (measured, skip on / off)", "tab:blue"),
              ("speedup_ideal", "ideal G / G_nonzero", "tab:gray")]
    if any(r.get("seed_speedup") for r in rows):
        series.append(("seed_speedup", "seed (PYNQ-Z1, table 7)", "tab:orange"))
    width = 0.8 / len(series)
    for i, (key, label, color) in enumerate(series):
        vals = [r.get(key) or 0 for r in rows]
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, vals, width, label=label, color=color)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(x, [str(r[label_key]) for r in rows], rotation=30 if len(rows) > 4 else 0, ha="right"
                  if len(rows) > 4 else "center")
    ax.set_ylabel("speedup over dense ternary (x)")
    ax.axhline(1.0, color="black", lw=0.5)
    ax.set_title(title)
    top = max((r.get(k) or 0) for r in rows for k, _, _ in series)
    ax.set_ylim(0, 1.3 * top if math.isfinite(top) and top > 0 else None)
    ax.legend(fontsize=8, loc="upper left", ncol=len(series))
    return _save(fig, path)


def plot_sweep(rows: list[dict], path: Path) -> Path:
    """Speedup against group sparsity, per layer shape, with the ideal 1 / (1 - Gs)."""
    import numpy as np
    fig, ax = _figure(figsize=(6, 4))
    shapes = list(dict.fromkeys(r["layer"] for r in rows))
    for shape in shapes:
        rs = sorted((r for r in rows if r["layer"] == shape), key=lambda r: r["group_sparsity"])
        ax.plot([100 * r["group_sparsity"] for r in rs], [r["speedup"] for r in rs], "o-", label=shape)
    gs = np.linspace(0, max(r["group_sparsity"] for r in rows), 100)
    ax.plot(100 * gs, 1 / (1 - gs), "k--", lw=1, label="ideal 1 / (1 - Gs)")
    ax.set_xlabel("group sparsity Gs (%)")
    ax.set_ylabel("speedup over dense ternary (x)")
    ax.set_title("Group skipping: speedup vs group sparsity")
    ax.legend(fontsize=8)
    return _save(fig, path)
