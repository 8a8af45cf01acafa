#!/usr/bin/env python
"""Table 3 ablation (fp, tern, prune, naive, wpc) and table 6 Cg sweep, ResNet-20 on Fashion-MNIST,
plus the cost of a WPC + ternary training step against a plain FP step, measured side by side.

CPU budget (default): every run trains the schedule of the embedded model (768 steps of batch 128
on a 16384-image subset, lr 0.1 / 0.01 / 0.001) and is tested on all 10,000 test images; about 12
minutes per run on one core, two runs side by side on a 2-core machine (partial invocations with
--modes/--cgs subsets fill the same --runs folder). On a GPU pass the full recipe:

    python benchmarks/training/ablation.py                          # CPU budget (see --help)
    python benchmarks/training/ablation.py --recipe fmnist --epochs 60 --milestones 30,45 --subset 0 --threads 0

Writes <out>/ablation.json, <out>/ablation.md and <out>/weight_hist.png (figure 6).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from pesto.models import build_model
from pesto.prune import Regularizer
from pesto.quant import latent_weight, ternarize_model
from pesto.train.loop import TrainConfig, train
from pesto.train.plots import tradeoff, weight_histograms
from pesto.train.recipes import recipe
from pesto.util import atomic_write_text

MODES = ("fp", "tern", "prune", "naive", "wpc")
SWEPT = ("naive", "wpc")  # the two ternary + group-sparsity modes, compared over lambda
HIST_LAYER = "layer3.0.conv2"  # a 64x64x3x3 layer: the "sample layer" of figure 6


def step_time_ratio(steps: int, batch: int, lam: float, threads: int | None) -> dict:
    """Median time of an FP step and of a WPC+ternary step, interleaved so both see the same load."""
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    nets = {}
    for mode in ("fp", "wpc"):
        m = build_model("resnet20", 1, 10, 28)
        if mode == "wpc":
            ternarize_model(m, cg=16)
        reg = Regularizer.for_mode(mode, m, lam=lam, a=1.0)
        nets[mode] = (m, reg, torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4))
    x, y = torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    times = {"fp": [], "wpc": []}
    for i in range(steps + 2):
        for mode in (("fp", "wpc") if i % 2 else ("wpc", "fp")):
            m, reg, opt = nets[mode]
            t = time.perf_counter()
            loss = F.cross_entropy(m(x), y)
            if reg.active:
                loss = loss + reg.penalty()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if i >= 2:  # warm-up steps not counted
                times[mode].append(time.perf_counter() - t)
    fp, wpc = statistics.median(times["fp"]), statistics.median(times["wpc"])
    ratios = [w / f for f, w in zip(times["fp"], times["wpc"])]
    return {"steps": steps, "batch": batch, "fp_step_s": fp, "wpc_step_s": wpc, "ratio": wpc / fp,
            "ratio_paired_median": statistics.median(ratios), "target": 1.3, "meets_target": wpc / fp <= 1.3}


def run_name(mode: str, cg: int, lam: float) -> str:
    return f"{mode}_cg{cg}" + (f"_lam{lam:g}" if lam else "") + ".pt"


def run_one(base: dict, mode: str, cg: int, lam: float, out: Path) -> dict:
    cfg = TrainConfig.from_dict({**base, "mode": mode, "cg": cg, "lam": lam,
                                 "out": str(out / run_name(mode, cg, lam)), "resume": True})
    ckpt = train(cfg)
    last = ckpt["history"][-1]
    return {"mode": mode, "cg": cg, "lambda": lam if mode in ("prune", "naive", "wpc") else 0.0,
            "a": base["a"] if mode == "wpc" else None,
            "test_acc": last["test_acc"], "overall_sparsity": last["overall_sparsity"],
            "group_sparsity": last["group_sparsity"], "in_group_sparsity": last["in_group_sparsity"],
            "compression_rate": last["compression_rate"], "epochs": ckpt["epoch"],
            "steps": sum(h["steps"] for h in ckpt["history"]),
            "train_s": round(sum(h["time_s"] for h in ckpt["history"]), 1),  # also right for resumed runs
            "history": [{k: h[k] for k in ("epoch", "test_acc", "group_sparsity", "overall_sparsity")}
                        for h in ckpt["history"]],
            "_hist": latent_weight(dict(_modules(ckpt))[HIST_LAYER]).detach().clone()}


def _modules(ckpt):
    from pesto.train.checkpoint import model_from_checkpoint
    return model_from_checkpoint(ckpt).named_modules()


def pct(v):
    return f"{100 * v:.1f}"


def wpc_at_sparsity(gs: float, wpcs: list[dict]) -> tuple[float, str]:
    """WPC accuracy at group sparsity gs, linear along the WPC lambda curve (nearest run outside it)."""
    pts = sorted(wpcs, key=lambda r: r["group_sparsity"])
    for lo, hi in zip(pts, pts[1:]):
        if lo["group_sparsity"] <= gs <= hi["group_sparsity"]:
            t = (gs - lo["group_sparsity"]) / ((hi["group_sparsity"] - lo["group_sparsity"]) or 1)
            return lo["test_acc"] + t * (hi["test_acc"] - lo["test_acc"]), \
                f"between lambda {lo['lambda']:g} and {hi['lambda']:g}"
    near = min(pts, key=lambda r: abs(r["group_sparsity"] - gs))
    return near["test_acc"], f"nearest run: lambda {near['lambda']:g} at {pct(near['group_sparsity'])} %"


def matched_table(sweep: dict[str, list[dict]]) -> list[str]:
    """The seed's claim read along the curves: accuracy of naive and WPC at equal group sparsity."""
    naives, wpcs = sweep.get("naive", []), sweep.get("wpc", [])
    if not naives or len(wpcs) < 2:
        return []
    lines = ["## Naive vs WPC at equal group sparsity (along the lambda curves)", "",
             "| naive lambda | group sparsity (%) | naive accuracy (%) | WPC accuracy there (%) | WPC - naive (points) |",
             "|---|---|---|---|---|"]
    for n in naives:
        acc, how = wpc_at_sparsity(n["group_sparsity"], wpcs)
        lines.append(f"| {n['lambda']:g} | {pct(n['group_sparsity'])} | {n['test_acc']:.2f} | {acc:.2f} ({how}) | "
                     f"{acc - n['test_acc']:+.2f} |")
    return lines + [""]


def lambda_table(sweep: dict[str, list[dict]], fp: dict | None) -> list[str]:
    """Naive and WPC at several lambdas: what each point of compression costs in accuracy."""
    rows = [r for m in SWEPT for r in sweep.get(m, [])]
    if len({r["lambda"] for r in rows}) < 2:
        return []
    lines = ["## Lambda sweep (Cg = 16): accuracy vs compression, naive and WPC", "",
             "| mode | lambda | accuracy (%) | gap to FP (points) | overall sparsity (%) | group sparsity (%) "
             "| compression rate |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        gap = f"{fp['test_acc'] - r['test_acc']:.2f}" if fp else "-"
        lines.append(f"| {r['mode']} | {r['lambda']:g} | {r['test_acc']:.2f} | {gap} | "
                     f"{pct(r['overall_sparsity'])} | {pct(r['group_sparsity'])} | {r['compression_rate']:.2f}x |")
    return lines + ["", "![trade-off](tradeoff.png)", ""]


def markdown(res: dict) -> str:
    b = res["budget"]
    rows = {r["mode"]: r for r in res["ablation"]}
    modes = [m for m in MODES if m in rows]
    lines = [
        "# Training ablation: ResNet-20 on Fashion-MNIST",
        "",
        f"Made by `{res['command']}` on {res['machine']} ({res['date']}), {res['wall_min']:.0f} min wall.",
        "",
        f"Budget: {b['epochs']} epochs of {b['subset'] or 'all'} training images "
        f"({b['steps_per_run']} steps of batch {b['batch_size']}), lr {b['lr']} x{b['gamma']} at epochs "
        f"{b['milestones']}, evaluated on {b['test_subset'] or 10000} test images. A CPU budget, not the "
        f"seed's converged schedule; every number is one run (one seed). Every run is a resumable checkpoint in "
        f"`--runs`: partial invocations (`--modes/--cgs` subsets, `--timing-steps 0`) with the same budget "
        f"can fill them in parallel; the command above then measured the step time and wrote the tables. "
        f"Train times are per run, with {b.get('parallel_runs', 1)} run(s) side by side on the CPU "
        f"(load average {res.get('load', '?')} when the tables were written).",
        "",
        "## Table 3 ablation (Cg = 16)",
        "",
        "| | " + " | ".join(modes) + " |",
        "|---|" + "---|" * len(modes),
        "| accuracy (%) | " + " | ".join(f"{rows[m]['test_acc']:.2f}" for m in modes) + " |",
        "| overall sparsity (%) | " + " | ".join(pct(rows[m]["overall_sparsity"]) for m in modes) + " |",
        "| group sparsity (%) | " + " | ".join(pct(rows[m]["group_sparsity"]) for m in modes) + " |",
        "| in-group sparsity (%) | " + " | ".join(pct(rows[m]["in_group_sparsity"]) for m in modes) + " |",
        "| compression rate (eq 2.8) | " + " | ".join(f"{rows[m]['compression_rate']:.2f}x" for m in modes) + " |",
        "| lambda | " + " | ".join(f"{rows[m]['lambda']:g}" for m in modes) + " |",
        "| train time (min) | " + " | ".join(f"{rows[m]['train_s'] / 60:.0f}" for m in modes) + " |",
        "",
        "## Table 6 PE-group size sweep (WPC)",
        "",
        "| | " + " | ".join(f"PE-{r['cg']}" for r in res["cg_sweep"]) + " |",
        "|---|" + "---|" * len(res["cg_sweep"]),
        "| accuracy (%) | " + " | ".join(f"{r['test_acc']:.2f}" for r in res["cg_sweep"]) + " |",
        "| overall sparsity (%) | " + " | ".join(pct(r["overall_sparsity"]) for r in res["cg_sweep"]) + " |",
        "| group sparsity (%) | " + " | ".join(pct(r["group_sparsity"]) for r in res["cg_sweep"]) + " |",
        "| compression rate | " + " | ".join(f"{r['compression_rate']:.2f}x" for r in res["cg_sweep"]) + " |",
        "| train time (min) | " + " | ".join(f"{r['train_s'] / 60:.0f}" for r in res["cg_sweep"]) + " |",
        "",
        *lambda_table(res.get("lambda_sweep") or {}, rows.get("fp")),
        *matched_table(res.get("lambda_sweep") or {}),
        "## Training-step cost (side by side, interleaved, same batch)",
        "",
        f"FP step {1000 * res['step_time']['fp_step_s']:.0f} ms, WPC + ternary step "
        f"{1000 * res['step_time']['wpc_step_s']:.0f} ms: ratio **{res['step_time']['ratio']:.2f}x** "
        f"(target <= 1.3x; median of {res['step_time']['steps']} steps of batch {res['step_time']['batch']}).",
        "",
        "## Targets",
        "",
    ]
    for t in res["targets"]:
        lines.append(f"- {t['name']}: {t['value']} -> **{'met' if t['met'] else 'not met'}**")
    lines.append("")
    return "\n".join(lines)


def targets(res: dict) -> list[dict]:
    rows = {r["mode"]: r for r in res["ablation"]}
    out = []
    if {"fp", "wpc"} <= set(rows):
        gap = rows["fp"]["test_acc"] - rows["wpc"]["test_acc"]
        cr = rows["wpc"]["compression_rate"]
        out.append({"name": "WPC within 1.0 accuracy point of FP at >= 20x compression",
                    "value": f"gap {gap:.2f} points at {cr:.1f}x", "met": gap <= 1.0 and cr >= 20})
    if {"naive", "wpc"} <= set(rows):
        w, n = rows["wpc"], rows["naive"]
        out.append({"name": "WPC higher group sparsity than naive at equal or better accuracy",
                    "value": f"WPC {pct(w['group_sparsity'])}% @ {w['test_acc']:.2f}% vs naive "
                             f"{pct(n['group_sparsity'])}% @ {n['test_acc']:.2f}%",
                    "met": w["group_sparsity"] > n["group_sparsity"] and w["test_acc"] >= n["test_acc"]})
    # the same two claims over the lambda sweep: lambda is a free knob, so compare the curves
    sweep = res.get("lambda_sweep") or {}
    wpcs, naives = sweep.get("wpc", []), sweep.get("naive", [])
    if "fp" in rows and len(wpcs) > 1:
        ok = [r for r in wpcs if rows["fp"]["test_acc"] - r["test_acc"] <= 1.0 and r["compression_rate"] >= 20]
        best = max(ok, key=lambda r: r["compression_rate"]) if ok else None
        out.append({"name": "(lambda sweep) WPC within 1.0 point of FP at >= 20x, at some lambda",
                    "value": (f"lambda {best['lambda']:g}: gap {rows['fp']['test_acc'] - best['test_acc']:.2f} "
                              f"points at {best['compression_rate']:.1f}x" if best else "at no lambda"),
                    "met": best is not None})
    st = res["step_time"]
    out.append({"name": "WPC + ternary step <= 1.3x FP step", "value": f"{st['ratio']:.2f}x",
                "met": st["meets_target"]})
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="fmnist-demo")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--subset", type=int, default=16384, help="training images (0: all)")
    p.add_argument("--test-subset", type=int, default=0, help="test images (0: all)")
    p.add_argument("--milestones", default="3,5", help="lr x gamma at these epochs")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--lambda-prune", type=float, default=2e-3)
    p.add_argument("--lambda-naive", type=float, default=2e-3)
    p.add_argument("--lambda-wpc", type=float, default=2e-3)
    p.add_argument("--a", type=float, default=1.0)
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--cgs", default="16,8,4,2,1")
    p.add_argument("--lambdas", default="0.002,0.003,0.005,0.01",
                   help="also train naive and WPC (Cg 16) at these lambdas: the accuracy / compression "
                        "trade-off of both ('' for none)")
    p.add_argument("--timing-steps", type=int, default=20, help="0: skip the step-time measurement")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    p.add_argument("--parallel-runs", type=int, default=1,
                   help="how many runs shared the CPU (recorded with the train times)")
    p.add_argument("--runs", default="build/training/ablation", help="checkpoints (resumable)")
    p.add_argument("--out", default="benchmarks/training/results")
    args = p.parse_args(argv)

    t0 = time.time()
    base = recipe(args.recipe)
    base.update(epochs=args.epochs, batch_size=args.batch_size, subset=args.subset or None, test_subset=args.test_subset or None,
                milestones=[int(v) for v in args.milestones.split(",") if v], lr=args.lr, a=args.a,
                progress=sys.stderr.isatty(), threads=args.threads or None)
    base.pop("mode", None)
    lams = {"fp": 0.0, "tern": 0.0, "prune": args.lambda_prune, "naive": args.lambda_naive, "wpc": args.lambda_wpc}
    runs, out = Path(args.runs), Path(args.out)
    runs.mkdir(parents=True, exist_ok=True)

    step = None
    if args.timing_steps:
        print("step time: FP vs WPC + ternary, interleaved ...", flush=True)
        step = step_time_ratio(args.timing_steps, base["batch_size"], args.lambda_wpc, args.threads or None)
        print(f"  FP {step['fp_step_s']:.3f} s, WPC {step['wpc_step_s']:.3f} s, ratio {step['ratio']:.2f}x",
              flush=True)

    ablation, hists = [], {}
    for mode in [m for m in args.modes.split(",") if m]:
        r = run_one(base, mode, 16, lams[mode], runs)
        hists[mode] = r.pop("_hist")
        ablation.append(r)
        print(f"{mode:6s} acc {r['test_acc']:.2f}%  overall {pct(r['overall_sparsity'])}%  group "
              f"{pct(r['group_sparsity'])}%  comp {r['compression_rate']:.2f}x  ({r['train_s']:.0f} s)", flush=True)
    sweep = [dict(r) for r in ablation if r["mode"] == "wpc"]
    for cg in [int(c) for c in args.cgs.split(",") if c]:
        if cg == 16 and sweep:
            continue
        r = run_one(base, "wpc", cg, lams["wpc"], runs)
        r.pop("_hist")
        sweep.append(r)
        print(f"wpc Cg={cg:2d} acc {r['test_acc']:.2f}%  overall {pct(r['overall_sparsity'])}%  group "
              f"{pct(r['group_sparsity'])}%  comp {r['compression_rate']:.2f}x  ({r['train_s']:.0f} s)", flush=True)
    sweep.sort(key=lambda r: -r["cg"])
    lam_sweep = {m: [dict(r) for r in ablation if r["mode"] == m] for m in SWEPT}
    for mode in SWEPT:
        for lam in [float(v) for v in args.lambdas.split(",") if v]:
            if any(r["lambda"] == lam for r in lam_sweep[mode]):
                continue
            r = run_one(base, mode, 16, lam, runs)
            r.pop("_hist")
            lam_sweep[mode].append(r)
            print(f"{mode} lambda={lam:g} acc {r['test_acc']:.2f}%  group {pct(r['group_sparsity'])}%  "
                  f"comp {r['compression_rate']:.2f}x  ({r['train_s']:.0f} s)", flush=True)
        lam_sweep[mode].sort(key=lambda r: r["lambda"])

    if step is None:
        print("(partial run: checkpoints in --runs; run again with --timing-steps > 0 for the tables)")
        return 0
    steps = ablation[0]["steps"] if ablation else 0
    res = {
        "command": "python " + " ".join(shlex.quote(a) for a in [sys.argv[0]] + (argv or sys.argv[1:])),
        "machine": f"{platform.machine()} {platform.processor() or ''} torch {torch.__version__}, "
                   f"{os.cpu_count()} cores, {torch.get_num_threads()} torch thread(s) per run".replace("  ", " "),
        "load": " / ".join(f"{v:.1f}" for v in os.getloadavg()),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "budget": {"epochs": args.epochs, "subset": base["subset"], "test_subset": base["test_subset"],
                   "batch_size": base["batch_size"], "lr": base["lr"], "gamma": base["gamma"],
                   "milestones": base["milestones"], "steps_per_run": steps, "a": args.a,
                   "parallel_runs": args.parallel_runs},
        "step_time": step, "ablation": ablation, "cg_sweep": sweep, "lambda_sweep": lam_sweep,
    }
    res["wall_min"] = (time.time() - t0) / 60
    res["targets"] = targets(res)
    out.mkdir(parents=True, exist_ok=True)
    if hists:
        weight_histograms(hists, out / "weight_hist.png", HIST_LAYER)
    if any(len(v) > 1 for v in lam_sweep.values()):
        refs = {m: r["test_acc"] for r in ablation for m in ("fp", "tern") if r["mode"] == m}
        tradeoff(lam_sweep, out / "tradeoff.png", refs, "ResNet-20, Fashion-MNIST, Cg 16 (labels: lambda)")
    atomic_write_text(out / "ablation.json", json.dumps(res, indent=1) + "\n")
    atomic_write_text(out / "ablation.md", markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
