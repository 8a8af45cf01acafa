"""Figures of Chapter 2, written to PNG files (matplotlib, Agg backend).

    weight_histograms  figure 6: latent-weight distribution of one layer per training mode (mu, sigma)
    sparsity_curves    figure 9: per-layer group sparsity and WPC threshold delta_l over epochs
    kernel_pattern     figure 5: the stitched ternary kernels of one layer ({-1, 0, +1} = white, grey, black)
    tradeoff           accuracy vs compression rate of regularized runs at several lambdas, per mode

Chapter 3 (--mode ast):

    subnet_sparsity    every sub-net's mask sparsity over the training steps (the staggered
                       schedule of observation 2) and its test accuracy per epoch
    subnet_overlap     figure 14: layer-wise sparsity of every sub-net and the non-overlap (XOR of
                       the masks) between sub-net pairs
    conflicts          figure 13: fraction of negative inner products between consecutive
                       sub-nets' gradients over training (per model and per tensor)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..quant.ternary import is_ternary, latent_weight, ternarize, ternary_codes


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(path)  # atomic: a reader never sees half a PNG
    _plt().close(fig)
    return path


def weight_histograms(weights: dict[str, torch.Tensor], path, layer: str = "") -> Path:
    """One histogram per mode (figure 6): {mode: latent weight tensor of the same layer}."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(weights), figsize=(3.2 * len(weights), 2.8), squeeze=False)
    lim = max(float(w.detach().abs().max()) for w in weights.values()) or 1.0
    for ax, (mode, w) in zip(axes[0], weights.items()):
        w = w.detach().float().flatten().cpu().numpy()
        ax.hist(w, bins=101, range=(-lim, lim), color="tab:blue")
        ax.set_title(f"{mode}\n$\\mu$={w.mean():.4f} $\\sigma$={w.std():.4f}", fontsize=9)
        ax.set_yticks([])
    fig.suptitle(f"weight distribution {layer}".strip(), fontsize=10, y=1.06)
    return _save(fig, path)


def sparsity_curves(history: list[dict], path, title: str = "") -> Path:
    """Figure 9: per-layer group sparsity (left) and WPC clipping threshold (right) per epoch."""
    plt = _plt()
    epochs = [h["epoch"] for h in history]
    names = list(history[-1].get("layers", {})) if history else []
    has_delta = bool(names) and "delta" in history[-1]["layers"][names[0]]
    fig, axes = plt.subplots(1, 2 if has_delta else 1, figsize=(12 if has_delta else 7, 3.6), squeeze=False,
                             gridspec_kw={"wspace": 0.45})
    cmap = plt.get_cmap("viridis")
    for i, name in enumerate(names):
        color = cmap(i / max(len(names) - 1, 1))
        axes[0][0].plot(epochs, [100 * h["layers"][name]["group_sparsity"] for h in history], color=color,
                        label=name)
        if has_delta:
            axes[0][1].plot(epochs, [h["layers"][name]["delta"] for h in history], color=color)
    axes[0][0].plot(epochs, [100 * h["group_sparsity"] for h in history], "k--", lw=2, label="model")
    axes[0][0].set(xlabel="epoch", ylabel="group sparsity (%)")
    axes[0][0].legend(fontsize=5, ncol=1, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if has_delta:
        axes[0][1].set(xlabel="epoch", ylabel="clipping threshold $\\delta_l$")
    fig.suptitle(title or "evolution of sparsity and clipping threshold", fontsize=10)
    return _save(fig, path)


@torch.no_grad()
def kernel_pattern(module: nn.Module, path, title: str = "", max_out: int = 32, max_in: int = 32) -> Path:
    """Figure 5: the kernels of one layer stitched into a grid (rows: output channels, columns:
    input channels), white/grey/black = -1/0/+1. Float layers are ternarized for display."""
    plt = _plt()
    codes, _ = ternary_codes(module) if is_ternary(module) else ternarize(latent_weight(module).detach().cpu())
    codes = codes.cpu()
    codes = codes.reshape(codes.shape[0], codes.shape[1], *(codes.shape[2:] or (1, 1)))[:max_out, :max_in]
    n, c, kh, kw = codes.shape
    img = np.full((n * (kh + 1) + 1, c * (kw + 1) + 1), np.nan)
    for i in range(n):
        for j in range(c):
            img[1 + i * (kh + 1):1 + i * (kh + 1) + kh, 1 + j * (kw + 1):1 + j * (kw + 1) + kw] = codes[i, j].numpy()
    from matplotlib.colors import ListedColormap
    fig, ax = plt.subplots(figsize=(max(3, c * 0.25), max(3, n * 0.25)))
    cmap = ListedColormap(["white", "#8c8c8c", "black"]).with_extremes(bad="#c03030")  # NaN: grid lines
    ax.imshow(np.ma.masked_invalid(img), cmap=cmap, vmin=-1.5, vmax=1.5, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title or f"ternary kernels {n}x{c}x{kh}x{kw}", fontsize=9)
    return _save(fig, path)


def tradeoff(points: dict[str, list[dict]], path, references: dict[str, float] | None = None,
             title: str = "") -> Path:
    """Accuracy vs compression rate: {mode: [{"lambda", "test_acc", "compression_rate"}, ...]},
    one line per mode, each point labelled with its lambda; references are horizontal lines
    (the FP and ternary accuracies, say)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for mode, runs in points.items():
        runs = sorted(runs, key=lambda r: r["compression_rate"])
        xs, ys = [r["compression_rate"] for r in runs], [r["test_acc"] for r in runs]
        ax.plot(xs, ys, "o-", label=mode)
        for r in runs:
            ax.annotate(f"{r['lambda']:g}", (r["compression_rate"], r["test_acc"]), fontsize=7,
                        textcoords="offset points", xytext=(4, 4))
    for i, (name, acc) in enumerate((references or {}).items()):
        ax.axhline(acc, ls="--", lw=0.8, color=f"C{i + len(points)}", label=f"{name} {acc:.2f} %")
    ax.set_xlabel("compression rate (eq 2.8), x")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title or "accuracy vs compression (labels: lambda)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def subnet_sparsity(history: list[dict], mask_trace, path, title: str = "") -> Path:
    """Left: each sub-net's mask group sparsity at its updates (steps); right: test accuracy per epoch."""
    plt = _plt()
    subs = history[-1]["subnets"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"wspace": 0.3})
    tr = np.asarray(mask_trace, dtype=float).reshape(-1, 3)
    for k, s in enumerate(subs):
        pts = tr[tr[:, 1] == k]
        axes[0].step(np.r_[0, pts[:, 0]], 100 * np.r_[0, pts[:, 2]], where="post", label=s["name"], color=f"C{k}")
        axes[0].axhline(100 * s["target"], ls=":", lw=0.8, color=f"C{k}")
        axes[1].plot([h["epoch"] for h in history], [h["subnets"][k]["test_acc"] for h in history], "o-",
                     color=f"C{k}", label=s["name"])
    axes[0].set(xlabel="training step", ylabel="mask group sparsity (%)")
    axes[1].set(xlabel="epoch", ylabel="test accuracy (%)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title or "sub-net sparsity over training and accuracy", fontsize=10)
    return _save(fig, path)


def subnet_overlap(masks, path, title: str = "") -> Path:
    """Figure 14 from a pesto.prune.subnets.SubnetMasks: per layer, every sub-net's sparsity and
    the non-overlap between sub-net pairs (the fraction of groups whose mask bit differs)."""
    plt = _plt()
    layers = list(masks.layers)
    k = len(masks.names)
    x = np.arange(len(layers))
    fig, axes = plt.subplots(2, 1, figsize=(max(7, 0.45 * len(layers)), 6), sharex=True)
    width = 0.8 / k
    for i, name in enumerate(masks.names):
        sp = masks.layer_sparsity(i)
        axes[0].bar(x + (i - (k - 1) / 2) * width, [100 * sp[n] for n in layers], width, label=name, color=f"C{i}")
    for i in range(k):
        for j in range(i + 1, k):
            ov = masks.overlap(i, j)
            gap = [100 * abs(masks.layer_sparsity(i)[n] - masks.layer_sparsity(j)[n]) for n in layers]
            axes[1].plot(x, [100 * ov[n] for n in layers], "o-", label=f"non-overlap {masks.names[i]} ^ {masks.names[j]}")
            axes[1].plot(x, gap, ":", color=axes[1].lines[-1].get_color(), label="sparsity gap")
    axes[0].set_ylabel("group sparsity (%)")
    axes[1].set_ylabel("% of groups")
    axes[1].set_xticks(x, layers, rotation=70, fontsize=7)
    for ax in axes:
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=7, ncol=2)
    fig.suptitle(title or "layer-wise sparsity and non-overlap between sub-nets (figure 14)", fontsize=10)
    return _save(fig, path)


def conflicts(gc_trace, path, window: int = 16, title: str = "") -> Path:
    """Figure 13: the fraction of negative inner products between the gradients of consecutive
    sub-nets (moving average over ``window`` inner-group pairs), per model and per tensor."""
    plt = _plt()
    tr = np.asarray(gc_trace, dtype=float).reshape(-1, 5)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    if len(tr):
        w = max(1, min(window, len(tr)))
        kernel = np.ones(w) / w
        steps = tr[w - 1:, 0]
        ax.plot(steps, 100 * np.convolve(tr[:, 4], kernel, "valid"), label="model (all shared weights)")
        ax.plot(steps, 100 * np.convolve(tr[:, 2] / np.maximum(tr[:, 3], 1), kernel, "valid"), label="per tensor")
    ax.set(xlabel="training step", ylabel="negative inner products (%)", ylim=(0, 100))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"gradient conflicts between consecutive sub-nets (moving average of {window})",
                 fontsize=9)
    return _save(fig, path)


def plot_run(model: nn.Module, history: list[dict], folder, mode: str, method_state: dict | None = None) -> list[Path]:
    """The figures of one training run: sparsity curves and the first compressed layer's kernels
    (plus, for a run with sub-nets, their sparsity, overlap and gradient conflicts)."""
    from ..prune import compressed_layers
    folder = Path(folder)
    out = [sparsity_curves(history, folder / f"{mode}_sparsity.png", f"{mode}: sparsity over epochs")]
    if history and history[-1].get("subnets"):
        from ..prune.subnets import SubnetMasks
        state = method_state or {}
        out.append(subnet_sparsity(history, state.get("mask_trace", []), folder / f"{mode}_subnet_sparsity.png"))
        out.append(subnet_overlap(SubnetMasks(model), folder / f"{mode}_overlap.png"))
        out.append(conflicts(state.get("gc_trace", []), folder / f"{mode}_conflicts.png"))
    layers = compressed_layers(model)
    if layers:
        name, m, _ = layers[0]
        out.append(kernel_pattern(m, folder / f"{mode}_kernels.png", f"{mode}: {name} ternary kernels"))
        out.append(weight_histograms({mode: latent_weight(m)}, folder / f"{mode}_hist.png", name))
    return out
