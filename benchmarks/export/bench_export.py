"""Export benchmark: export time and artifact size for ResNet-20 and ResNet-18, the size against
eq 2.8's compression (codes only) with the overhead itemised, and the float vs integer accuracy
of the embedded ResNet-20 on the full Fashion-MNIST test set.

    python benchmarks/export/bench_export.py                 # everything (~10 min on 2 cores)
    python benchmarks/export/bench_export.py --test-images 1000 --skip-resnet18   # quicker

Writes benchmarks/export/results/export.json and export.md (commit them with the command).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from pesto import artifact as A
from pesto.data import load_splits
from pesto.export import UntrainedWarning, export_model, load_model
from pesto.models import build_model
from pesto.quant import latent_weight, ternarize_model, ternary_layers
from pesto.reference.network import normalize, predict
from pesto.train.checkpoint import default_checkpoint_path

OUT = Path(__file__).resolve().parent / "results"


def size_breakdown(art: A.Artifact, nbytes: int) -> dict:
    """Where the artifact's bytes go, and eq 2.8's ideal for the ternary weights."""
    t = art.totals()
    stages = sum(l.out_channels * (2 + 1 + 8) for l in art.layers)       # mult int16, shift u8, bias int64
    host = sum(a.nbytes for n in art.nodes if n.op != "tconv" for a in n.arrays.values())
    eq28 = t["weights"] * 32 / t["compression"] / 8
    return {
        "artifact_bytes": nbytes, "codes_bytes": t["code_bytes"], "indexer_bytes": t["indexer_bytes"],
        "output_stage_bytes": stages, "host_layer_bytes": host,
        "manifest_header_padding_bytes": nbytes - t["code_bytes"] - t["indexer_bytes"] - stages - host,
        "ternary_weights": t["weights"], "float32_weight_bytes": 4 * t["weights"],
        "group_sparsity": t["group_sparsity"], "eq28_compression": t["compression"], "eq28_bytes": eq28,
        "measured_compression_codes_indexers": 4 * t["weights"] / (t["code_bytes"] + t["indexer_bytes"]),
        "measured_compression_accel_part": 4 * t["weights"] / (t["code_bytes"] + t["indexer_bytes"] + stages),
        "speedup_ideal": t["speedup_ideal"],
    }


def timed_export(source, images, repeats: int, **kw):
    """(artifact, median seconds, all seconds, phases of the median run: load/calibration/build)."""
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        art = export_model(source, images, verify=0, **kw)
        runs.append((time.perf_counter() - t0, art))
    runs.sort(key=lambda r: r[0])
    t_med, art = runs[len(runs) // 2]
    return art, t_med, [r[0] for r in runs], art.meta["export"]["timing_s"]


def prune_groups(model, fraction: float, seed: int = 0):
    """Zero a random fraction of each ternary layer's PE groups (a stand-in for WPC training)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, m, cg in ternary_layers(model):
            w = latent_weight(m)
            n, c = w.shape[:2]
            dead = torch.rand(n, -(-c // cg), generator=g) < fraction
            w[dead.repeat_interleave(cg, 1)[:, :c].view(n, c, 1, 1).expand_as(w)] = 0
    return model


def bench_resnet20(ckpt: Path, train_x, test_x, test_y, n_test: int, repeats: int, tmp: Path) -> dict:
    model, info = load_model(str(ckpt))
    calib = train_x[:256]
    art, t_med, times, phases = timed_export((model, info), calib, repeats)
    path = A.save(art, tmp / "resnet20.pesto")
    t0 = time.perf_counter()
    A.load(path)
    t_load = time.perf_counter() - t0
    res = {"model": f"resnet20 ({ckpt.name}, {info['mode']}, epoch {info.get('epoch')})", "checkpoint": str(ckpt.name), "input": "1x28x28",
           "calibration_images": len(calib), "export_seconds_median": t_med, "export_seconds": times,
           "export_phases_s": phases, "load_seconds": t_load, **size_breakdown(art, path.stat().st_size), "layers": art.layer_stats()}
    x, y = test_x[:n_test], test_y[:n_test]
    with torch.no_grad():
        fp = np.concatenate([model(torch.from_numpy(normalize(art, x[i:i + 500]))).argmax(1).numpy()
                             for i in range(0, len(x), 500)])
    t0 = time.perf_counter()
    ip = predict(art, x, batch_size=250, progress=True)
    res.update({"test_images": int(len(x)), "float_accuracy": float(100 * (fp == y).mean()),
                "integer_accuracy": float(100 * (ip == y).mean()), "prediction_agreement": float(100 * (fp == ip).mean()),
                "integer_reference_seconds": time.perf_counter() - t0})
    res["accuracy_gap_points"] = res["integer_accuracy"] - res["float_accuracy"]
    return res


def bench_resnet18(repeats: int, tmp: Path, group_sparsity: float) -> dict:
    torch.manual_seed(0)
    model = ternarize_model(build_model("resnet18", in_channels=3, num_classes=1000, input_size=224), cg=64)
    prune_groups(model, group_sparsity)
    calib = np.random.default_rng(0).integers(0, 256, size=(8, 3, 224, 224), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedWarning)
        art, t_med, times, phases = timed_export(model.eval(), calib, repeats, mean=[0.485, 0.456, 0.406],
                                         std=[0.229, 0.224, 0.225], num_calibration=8)
    path = A.save(art, tmp / "resnet18.pesto")
    return {"model": f"resnet18 (random init, ternarized, Cg=64, {int(100 * group_sparsity)}% of groups zeroed)",
            "input": "3x224x224", "calibration_images": 8, "export_seconds_median": t_med, "export_seconds": times,
            "export_phases_s": phases,
            **size_breakdown(art, path.stat().st_size), "layers": art.layer_stats()}


def markdown(results: dict) -> str:
    lines = ["# Export benchmark", "", f"Command: `{results['command']}`  ", f"Machine: {results['machine']}  ",
             f"Date: {results['date']}", "", "## Export time and artifact size", "",
             "| model | export (s, median) | of which calibration / build (s) | artifact (B) | codes (B) | indexers (B) | output stages (B) | "
             "host layers (B) | manifest+header (B) | Gs | eq 2.8 | eq 2.8 size (B) | measured codes+indexers |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["models"]:
        ph = r["export_phases_s"]
        lines.append(f"| {r['model']} | {r['export_seconds_median']:.2f} | {ph['calibration']:.2f} / {ph['build']:.2f} | "
                     f"{r['artifact_bytes']:,} | {r['codes_bytes']:,} | "
                     f"{r['indexer_bytes']:,} | {r['output_stage_bytes']:,} | {r['host_layer_bytes']:,} | "
                     f"{r['manifest_header_padding_bytes']:,} | {100 * r['group_sparsity']:.1f}% | "
                     f"{r['eq28_compression']:.2f}x | {r['eq28_bytes']:,.0f} | "
                     f"{r['measured_compression_codes_indexers']:.2f}x |")
    acc = next((r for r in results["models"] if "float_accuracy" in r), None)
    if acc:
        lines += ["", f"## Float model vs integer pipeline ({acc['model']}, Fashion-MNIST test set)", "",
                  "| images | float top-1 | integer top-1 | gap (points) | same prediction |", "|---|---|---|---|---|",
                  f"| {acc['test_images']} | {acc['float_accuracy']:.2f}% | {acc['integer_accuracy']:.2f}% | "
                  f"{acc['accuracy_gap_points']:+.2f} | {acc['prediction_agreement']:.2f}% |"]
    for r in results["models"]:
        lines += ["", f"## Per layer: {r['model']}", "",
                  "| layer | shape | Cg | groups | non-zero | Gs | eq 2.8 | ideal speedup G/G_nz |", "|---|---|---|---|---|---|---|---|"]
        for s in r["layers"]:
            lines.append(f"| {s['name']} | {'x'.join(map(str, s['shape']))} | {s['cg']} | {s['groups']} | {s['nnz_groups']} | "
                         f"{100 * s['group_sparsity']:.1f}% | {s['compression']:.2f}x | {s['speedup_ideal']:.2f}x |")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    """Per model: artifact bytes by part next to eq 2.8's size; ResNet-20's per-layer G/G_nz."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    models = results["models"]
    fig, axes = plt.subplots(1, len(models) + 1, figsize=(5 + 3.2 * len(models), 4.5),
                             gridspec_kw={"width_ratios": [1] * len(models) + [2.2]})
    parts = [("codes_bytes", "2-bit codes"), ("indexer_bytes", "group indexers"),
             ("output_stage_bytes", "output stages"), ("host_layer_bytes", "float host layers"),
             ("manifest_header_padding_bytes", "manifest + header")]
    for ax, r in zip(axes, models):
        bottom = 0
        for j, (key, label) in enumerate(parts):
            ax.bar(0, r[key] / 1024, bottom=bottom / 1024, color=f"C{j}", label=label)
            bottom += r[key]
        ax.bar(1, r["eq28_bytes"] / 1024, color="0.6", hatch="//", label="eq 2.8 (ternary weights)")
        ax.set_xticks([0, 1], ["artifact", "eq 2.8"])
        ax.set_ylabel("KiB")
        ax.set_title(f"{r['model'].split(' (')[0]}: Gs {100 * r['group_sparsity']:.0f}%, {r['eq28_compression']:.1f}x",
                     fontsize=9)
    axes[0].legend(fontsize=7, loc="upper right")
    ax = axes[-1]
    layers = models[0]["layers"]
    ax.bar(range(len(layers)), [s["speedup_ideal"] for s in layers], color="C1")
    ax.set_xticks(range(len(layers)), [s["name"].replace("layer", "L") for s in layers], rotation=70, fontsize=7)
    ax.set_ylabel("ideal speedup G / G_nz")
    ax.set_title(f"{models[0]['model'].split(' (')[0]}: per-layer skipping bound", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, default=default_checkpoint_path(),
                   help="the trained ResNet-20 (default: the embedded one)")
    p.add_argument("--test-images", type=int, default=10000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--resnet18-group-sparsity", type=float, default=0.25)
    p.add_argument("--skip-resnet18", action="store_true")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    import tempfile
    train, test = load_splits("fashion-mnist", augment=False)
    models = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        models.append(bench_resnet20(args.checkpoint, train.images.numpy(), test.images.numpy(), test.labels.numpy(),
                                     args.test_images, args.repeats, tmp))
        if not args.skip_resnet18:
            models.append(bench_resnet18(args.repeats, tmp, args.resnet18_group_sparsity))
    load = os.getloadavg()
    results = {"command": ("python benchmarks/export/bench_export.py " + " ".join(argv if argv is not None else sys.argv[1:])).strip(),
               "machine": f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs (load average "
                          f"{load[0]:.1f} at the end), {torch.get_num_threads()} torch threads, Python {platform.python_version()}",
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "models": models}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from pesto.util import atomic_write_text
    atomic_write_text(out / "export.json", json.dumps(results, indent=1, default=float))
    atomic_write_text(out / "export.md", markdown(results) + "\n![artifact size and per-layer bound](export.png)\n")
    plot(results, out / "export.png")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
