"""Figures of Chapter 5, as PNG files.

    accuracy_matrices   the T x T accuracy matrix of each method (rows: after task t; columns: task i)
    freezing_decisions  figure 22: per task, which layers were still updated at its end (dots) and
                        when each frozen one stopped (colour), for each freezing method
"""

from __future__ import annotations

import numpy as np

from ..train.plots import _plt, _save


def accuracy_matrices(mats: dict[str, list[list[float]]], path, title: str = ""):
    """One heat map per method; a single-row matrix (multitask) is drawn as its one row."""
    plt = _plt()
    n = len(mats)
    fig, axes = plt.subplots(1, n, figsize=(2.9 * n, 3.1), squeeze=False)
    vals = [v for m in mats.values() for row in m for v in row]
    lo, hi = (min(vals), max(vals)) if vals else (0, 100)
    for ax, (name, m) in zip(axes[0], mats.items()):
        a = np.array(m, dtype=float)
        im = ax.imshow(a, vmin=lo, vmax=hi, cmap="viridis", aspect="auto")
        for (r, c), v in np.ndenumerate(a):
            ax.text(c, r, f"{v:.0f}", ha="center", va="center", fontsize=7,
                    color="white" if v < (lo + hi) / 2 else "black")
        ax.set_title(name, fontsize=9)
        ax.set_xticks(range(a.shape[1]), [str(i + 1) for i in range(a.shape[1])], fontsize=7)
        ax.set_yticks(range(a.shape[0]), [str(i + 1) for i in range(a.shape[0])] if a.shape[0] > 1 else ["all"],
                      fontsize=7)
        ax.set_xlabel("evaluated task", fontsize=8)
    axes[0][0].set_ylabel("after training task", fontsize=8)
    fig.colorbar(im, ax=list(axes[0]), shrink=0.8, label="accuracy (%)")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def freezing_decisions(decisions: dict[str, list[dict]], n_layers: int, path, title: str = ""):
    """Figure 22: for every task after the first, the layers updated until the end (blue dots) and
    the frozen ones, coloured by the share of the task after which they were frozen."""
    plt = _plt()
    n = len(decisions)
    rows = max((sum(1 for d in decs if d.get("order")) for decs in decisions.values()), default=1)
    fig, axes = plt.subplots(n, 1, figsize=(7.5, n * (1.0 + 0.3 * rows)), squeeze=False, constrained_layout=True)
    cmap = plt.get_cmap("autumn")
    for ax, (name, decs) in zip(axes[:, 0], decisions.items()):
        decs = [d for d in decs if d.get("order")]
        for row, d in enumerate(decs):
            when = {}
            total = d["steps"]
            for step, *idx in d["frozen_at"]:
                for i in idx:
                    when[i] = step / total
            upd = [i for i in range(n_layers) if i not in when]
            ax.scatter(upd, [row] * len(upd), s=18, color="tab:blue", label="updated" if row == 0 else None)
            fr = sorted(when)
            if fr:
                ax.scatter(fr, [row] * len(fr), s=22, marker="x", c=[cmap(when[i]) for i in fr],
                           label="frozen" if row == 0 else None)
        ax.set_yticks(range(len(decs)), [f"task {d['task'] + 1}" for d in decs], fontsize=7)
        ax.set_xticks(range(n_layers), [str(i) for i in range(n_layers)], fontsize=6)
        ax.set_xlim(-0.5, n_layers - 0.5)
        ax.set_ylim(-0.6, len(decs) - 0.4)
        ax.set_title(name, fontsize=9)
        ax.grid(axis="x", alpha=0.2)
    axes[-1, 0].set_xlabel("layer index (forward order); x = frozen, coloured red (early) to yellow (late in the task)",
                           fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="upper right", ncol=2)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)
