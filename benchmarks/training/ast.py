#!/usr/bin/env python
"""AST-GC (Chapter 3) on ResNet-20 / Fashion-MNIST: tables 10/14 and 12, figures 13 and 14.

Table 10/14 analogue: K = 3 sub-nets (30/50/70 % group sparsity, PE groups of 16) trained once by
AST+GC at budget B, against three individually trained models at budget B each (3B in total:
the same method with K = 1), AST without gradient correction, and joint training (eq 3.3: every
sub-net every step, K forward/backward passes per step). Table 12 analogue: N:M sub-nets, over PE
groups (Cg 4: 3:4, 2:4, 1:4, every output channel the same work) and over weights (2:4, 1:4, 1:8,
1:16 kept, the seed's 2:4, 3:4, 7:8, 15:16 pruned). Every sub-net is tested on all 10,000 test
images. Training cost: steps and forward/backward passes per run, the measured train time, and
the time of one step of each variant measured side by side (interleaved, the same batch).

CPU budget B (default): the ``fmnist-ast`` recipe, 512 steps of batch 64 on an 8192-image subset,
1000 test images per epoch (the final figures use all 10,000).
Every run is a resumable checkpoint in --runs, so partial invocations (``--only``) can fill them
in parallel; the full invocation then measures the step times and writes the tables:

    python benchmarks/training/ast.py --only ast_gc,indiv_s30 &      # two runs side by side
    python benchmarks/training/ast.py                                # the rest, then the tables
    python benchmarks/training/ast.py --epochs 160 --subset 0 --milestones 80,120 --prune-every 1000 \
        --threads 0 --runs build/training/ast_gpu --out build/training/ast_gpu          # the full recipe, GPU

Writes <out>/ast.json, <out>/ast.md and the figures <out>/ast_*.png.
"""

from __future__ import annotations

import os
import sys

# this file is named like the standard library's `ast` module, which torch imports: keep its folder
# off the import path
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import argparse
import json
import platform
import shlex
import statistics
import time
from pathlib import Path

import torch

from pesto.data import load_splits
from pesto.prune.subnets import SubnetMasks, select_subnet
from pesto.train.checkpoint import build_from_config, model_from_checkpoint
from pesto.train.loop import TrainConfig, evaluate, train
from pesto.train.methods import get_method
from pesto.train.plots import conflicts, subnet_overlap, subnet_sparsity
from pesto.train.recipes import recipe
from pesto.util import atomic_write_text

TARGETS = [0.3, 0.5, 0.7]


def variants(args) -> dict[str, dict]:
    """Run name -> the options it changes on the recipe."""
    v = {
        "ast_gc": {},
        "ast_nogc": {"gc": False},
        "joint": {"joint": True, "gc": None},
        **{f"indiv_s{round(100 * t)}": {"subnets": [t]} for t in TARGETS},
        "nm_group": {"pattern": "nm", "cg": 4, "subnets": ["3:4", "2:4", "1:4"]},
        "nm_element": {"pattern": "nm-element", "subnets": ["2:4", "1:4", "1:8", "1:16"]},
    }
    if args.with_cs:
        v["ast_gc_cs"] = {"scheme": "cs"}
    if args.extended:
        v["ast_gc_2x"] = {"epochs": 2 * args.epochs,
                          "milestones": [2 * m for m in args.milestones]}
    return v


def passes_per_step(opts: dict) -> int:
    return len(opts.get("subnets", TARGETS)) if opts.get("joint") else 1


@torch.no_grad()
def test_all(ckpt: dict, test, cache: Path) -> list[dict]:
    """Every sub-net of a checkpoint on all test images (cached beside the checkpoint by its checksum)."""
    if cache.is_file():
        saved = json.loads(cache.read_text())
        if saved.get("state_sha256") == ckpt["state_sha256"] and saved["results"][0]["images"] == len(test):
            return saved["results"]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model_from_checkpoint(ckpt).to(device)
    loader = torch.utils.data.DataLoader(test, 500)
    out = []
    for k, name in enumerate(model.subnet_names):
        select_subnet(model, k)
        loss, acc = evaluate(model, loader, device)
        out.append({"name": name, "test_acc": acc, "test_loss": loss, "images": len(test)})
    atomic_write_text(cache, json.dumps({"state_sha256": ckpt["state_sha256"], "results": out}) + "\n")
    return out


def run_one(name: str, base: dict, opts: dict, runs: Path, test) -> dict:
    cfg = TrainConfig.from_dict({**base, **opts, "out": str(runs / f"{name}.pt"), "resume": True})
    ckpt = train(cfg)
    last = ckpt["history"][-1]
    final = test_all(ckpt, test, runs / f"{name}.test.json")
    subs = []
    for s, f in zip(last["subnets"], final):
        subs.append({k: s[k] for k in ("name", "target", "nm", "group_sparsity", "mask_sparsity", "overall_sparsity",
                                       "in_group_sparsity", "compression_rate", "steps")} | {"test_acc": f["test_acc"]})
    steps = sum(h["steps"] for h in ckpt["history"])
    return {"name": name, "options": opts, "subnets": subs, "steps": steps,
            "passes": steps * passes_per_step(opts),
            "train_s": round(sum(h.get("train_s", h["time_s"]) for h in ckpt["history"]), 1),
            "mean_acc": sum(s["test_acc"] for s in subs) / len(subs), "test_images": final[0]["images"],
            "history": [{"epoch": h["epoch"], "test_acc": h["test_acc"],
                         "subnets": [{"name": s["name"], "test_acc": s["test_acc"], "mask_sparsity": s["mask_sparsity"]}
                                     for s in h["subnets"]], "gc": h["gc"]} for h in ckpt["history"]],
            "method": ckpt["method"], "_ckpt": ckpt}


def step_times(base: dict, steps: int) -> dict:
    """Median seconds of one training step of each variant, interleaved on the same batch."""
    mc = {"name": base["model"], "in_channels": 1, "num_classes": 10, "input_size": 28}
    x, y = torch.randn(base["batch_size"], 1, 28, 28), torch.randint(0, 10, (base["batch_size"],))
    nets = {}
    for name, opts in {"individual (K=1)": {"subnets": [0.5]}, "AST": {"gc": False}, "AST+GC": {},
                       "joint": {"joint": True, "gc": None}}.items():
        cfg = TrainConfig.from_dict({**base, **opts, "out": None})
        torch.manual_seed(0)
        model = build_from_config(mc, cfg.quant)
        method = get_method("ast")(model, cfg, 100)   # steps past the mask window: one final update, then none
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        nets[name] = (model, method, opt)
    times = {n: [] for n in nets}
    for i in range(steps + 3):
        order = list(nets) if i % 2 else list(nets)[::-1]
        for n in order:
            model, method, opt = nets[n]
            t = time.perf_counter()
            method.train_step(model, opt, x, y, 10 ** 5 + i)   # outside the mask window: the plain step
            if i >= 3:
                times[n].append(time.perf_counter() - t)
    med = {n: statistics.median(v) for n, v in times.items()}
    return {"steps": steps, "batch": base["batch_size"], "median_s": med,
            "relative": {n: med[n] / med["individual (K=1)"] for n in med}}


def pct(v) -> str:
    return f"{100 * v:.1f}"


def verdicts(res: dict) -> list[dict]:
    r = {x["name"]: x for x in res["runs"]}
    out = []
    indiv = {t: r.get(f"indiv_s{round(100 * t)}") for t in TARGETS}
    if "ast_gc" in r and any(indiv.values()):
        gaps = [(s["name"], indiv[t]["subnets"][0]["test_acc"] - s["test_acc"])
                for s, t in zip(r["ast_gc"]["subnets"], TARGETS) if indiv[t]]
        missing = [f"s{round(100 * t)}" for t, x in indiv.items() if not x]
        # each individual run costs B steps: a missing one is counted at B too
        cost = r["ast_gc"]["steps"] / sum(x["steps"] if x else r["ast_gc"]["steps"] for x in indiv.values())
        worst = max(g for _, g in gaps)
        out.append({"name": "each AST+GC sub-net within 1.0 point of its individually trained counterpart "
                            "at 1/K of their total cost",
                    "value": ", ".join(f"{n}: {g:+.2f}" for n, g in gaps) + f" points behind; cost {cost:.2f}x"
                             + (f" (not run: {', '.join(missing)})" if missing else ""),
                    "met": worst <= 1.0 and cost <= 1 / 3 + 1e-9 and not missing, "worst_gap": worst,
                    "partial": bool(missing)})
    if {"ast_gc", "ast_nogc"} <= set(r):
        a, b = r["ast_gc"]["mean_acc"], r["ast_nogc"]["mean_acc"]
        out.append({"name": "AST+GC at least as accurate as AST without GC on average",
                    "value": f"{a:.2f}% vs {b:.2f}% ({a - b:+.2f})", "met": a >= b})
    if {"ast_gc", "joint"} <= set(r):
        a, j = r["ast_gc"], r["joint"]
        out.append({"name": "AST+GC more accurate than joint training at a lower cost",
                    "value": f"{a['mean_acc']:.2f}% vs {j['mean_acc']:.2f}% ({a['mean_acc'] - j['mean_acc']:+.2f}) "
                             f"at {a['passes']} vs {j['passes']} forward/backward passes",
                    "met": a["mean_acc"] > j["mean_acc"] and a["passes"] < j["passes"]})
    return out


def markdown(res: dict) -> str:
    b, r = res["budget"], {x["name"]: x for x in res["runs"]}
    lines = ["# AST-GC: K sub-nets in one training run (ResNet-20, Fashion-MNIST)", "",
             f"Made by `{res['command']}` on {res['machine']} ({res['date']}); load average {res['load']}.", "",
             f"Budget B: {b['steps']} steps of batch {b['batch_size']} ({b['epochs']} epochs of "
             f"{b['subset'] or 'all'} training images), lr {b['lr']} x{b['gamma']} at epochs {b['milestones']}, "
             f"masks raised every {b['prune_every']} steps over the first {100 * b['prune_end']:.0f} % of the run "
             f"(cosine from {b['sparsity_init']:g}), regrow {b['regrow']:g} -> 0, PE groups of Cg {b['cg']}. "
             f"Every sub-net tested on all {res['test_images']} test images. One run (one seed) per number: "
             f"differences of a few tenths of a point are within run-to-run noise. Train times are wall "
             f"times of runs that shared the 2-core CPU with other jobs; the step-time table below is the "
             f"clean comparison.", ""]
    rows = [("individually trained (3 runs of B)", [r.get(f"indiv_s{round(100 * t)}") for t in TARGETS]),
            ("AST+GC (one run of B)", [r.get("ast_gc")] * 3), ("AST without GC (B)", [r.get("ast_nogc")] * 3),
            ("joint training, eq 3.3 (B steps)", [r.get("joint")] * 3),
            ("AST+GC, completely subset (B)", [r.get("ast_gc_cs")] * 3)]
    if "ast_gc_2x" in r:
        rows.append(("AST+GC at 2B", [r["ast_gc_2x"]] * 3))
    lines += ["## Table 10 / 14 analogue: accuracy (%) / group sparsity (%) / compression (eq 2.8)", "",
              "| method | 30 % sub-net | 50 % sub-net | 70 % sub-net | mean acc. | steps | fwd+bwd passes | train time (min) |",
              "|---|---|---|---|---|---|---|---|"]
    for label, runs in rows:
        if all(x is None for x in runs):
            continue
        cells, accs = [], []
        for i, x in enumerate(runs):
            if x is None:
                cells.append("(not run)")
                continue
            s = x["subnets"][0] if x["name"].startswith("indiv") else x["subnets"][i]
            cells.append(f"{s['test_acc']:.2f} / {pct(s['group_sparsity'])} / {s['compression_rate']:.1f}x")
            accs.append(s["test_acc"])
        uniq = {x["name"]: x for x in runs if x}.values()
        steps = sum(x["steps"] for x in uniq)
        passes = sum(x["passes"] for x in uniq)
        wall = sum(x["train_s"] for x in uniq) / 60
        mean = f"{sum(accs) / 3:.2f}" if len(accs) == 3 else "-"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {mean} | {steps} | {passes} | {wall:.0f} |")
    st = res.get("step_time")
    if st:
        lines += ["", f"One training step, measured side by side (interleaved, the same batch of {st['batch']}, "
                      f"median of {st['steps']}):", "",
                  "| variant | ms / step | relative |", "|---|---|---|"]
        lines += [f"| {n} | {1000 * v:.0f} | {st['relative'][n]:.2f}x |" for n, v in st["median_s"].items()]
        lines += ["", "Total training cost in individual-step units: individual 3 x B, AST / AST+GC "
                      f"{st['relative']['AST']:.2f} / {st['relative']['AST+GC']:.2f} x B, joint "
                      f"{st['relative']['joint']:.2f} x B."]
    nm = [x for x in (r.get("nm_group"), r.get("nm_element")) if x]
    if nm:
        seed = {"2:4": "2:4", "1:4": "3:4", "1:8": "7:8", "1:16": "15:16"}
        lines += ["", "## Table 12 analogue: N:M sub-nets (AST+GC, one run each, budget B)", "",
                  "N:M keeps N of every M (NVIDIA's convention); the seed's table 12 names the pruned count "
                  "(its 3:4 is our 1:4).", "",
                  "| run | sub-net (kept N:M) | seed's name | accuracy (%) | group sparsity (%) | mask sparsity (%) | compression |",
                  "|---|---|---|---|---|---|---|"]
        for x in nm:
            for s in x["subnets"]:
                key = f"{s['nm'][0]}:{s['nm'][1]}"
                level = "PE groups, Cg 4" if x["name"] == "nm_group" else "weights"
                lines.append(f"| {x['name']} ({level}) | {key} | {seed.get(key, '-') if x['name'] == 'nm_element' else '-'} | "
                             f"{s['test_acc']:.2f} | {pct(s['group_sparsity'])} | {pct(s['mask_sparsity'])} | "
                             f"{s['compression_rate']:.1f}x |")
    lines += ["", "## Figures", "",
              "![sub-net sparsity](ast_subnet_sparsity.png)", "",
              "Figure 14 analogue (AST+GC, non-disjoint): layer-wise sparsity and non-overlap between sub-nets:", "",
              "![overlap](ast_overlap.png)", "",
              "Figure 13 analogue: negative inner products between consecutive sub-nets' gradients (AST+GC: "
              "before correction; AST: never corrected):", "", "![conflicts GC](ast_conflicts_gc.png)",
              "![conflicts no GC](ast_conflicts_nogc.png)", "", "## Targets", ""]
    for t in res["targets"]:
        lines.append(f"- {t['name']}: {t['value']} -> **{'met' if t['met'] else 'not met'}**")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="fmnist-ast")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--subset", type=int, default=8192, help="training images (0: all)")
    p.add_argument("--test-subset", type=int, default=1000,
                   help="test images of the per-epoch evaluation (the final one uses all)")
    p.add_argument("--milestones", type=lambda s: [int(v) for v in s.split(",") if v], default=[2, 3])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--prune-every", type=int, default=None, help="steps between mask updates (default: the recipe's)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    p.add_argument("--only", default="", help="comma-separated run names (partial invocation)")
    p.add_argument("--skip", default="", help="comma-separated run names left out of the tables (a smaller run)")
    p.add_argument("--extended", action="store_true", help="also AST+GC at 2B (section 3.5.3)")
    p.add_argument("--with-cs", action="store_true", help="also AST+GC with the completely-subset scheme (table 9)")
    p.add_argument("--timing-steps", type=int, default=10, help="0: skip the step-time measurement")
    p.add_argument("--runs", default="build/training/ast", help="checkpoints (resumable)")
    p.add_argument("--out", default="benchmarks/training/results")
    args = p.parse_args(argv)

    t0 = time.time()
    base = recipe(args.recipe)
    if args.prune_every:
        base["prune_every"] = args.prune_every
    base.update(epochs=args.epochs, subset=args.subset or None, test_subset=args.test_subset or None,
                milestones=args.milestones, batch_size=args.batch_size, threads=args.threads or None,
                progress=sys.stderr.isatty())
    runs, out = Path(args.runs), Path(args.out)
    runs.mkdir(parents=True, exist_ok=True)
    _, test = load_splits(base["dataset"], augment=False)
    todo = variants(args)
    only = [n for n in args.only.split(",") if n]
    skip = [n for n in args.skip.split(",") if n]
    unknown = (set(only) | set(skip)) - set(todo)
    if unknown:
        p.error(f"unknown runs {sorted(unknown)}; choose from {', '.join(todo)}")
    results = []
    for name, opts in todo.items():
        if (only and name not in only) or name in skip:
            continue
        r = run_one(name, base, opts, runs, test)
        results.append(r)
        print(f"{name:10s} " + "  ".join(f"{s['name']} {s['test_acc']:.2f}% @ {pct(s['group_sparsity'])}%"
                                          for s in r["subnets"]) + f"  ({r['steps']} steps, {r['train_s']:.0f} s)",
              flush=True)
    if only:
        print("(partial run: checkpoints in --runs; run without --only for the tables)")
        return 0
    st = step_times(base, args.timing_steps) if args.timing_steps else None
    res = {
        "command": "python " + " ".join(shlex.quote(a) for a in [sys.argv[0]] + (argv or sys.argv[1:])),
        "machine": f"{platform.machine()} torch {torch.__version__}, {os.cpu_count()} cores, "
                   f"{torch.get_num_threads()} torch thread(s) per run",
        "load": " / ".join(f"{v:.1f}" for v in os.getloadavg()),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "budget": {k: base[k] for k in ("epochs", "subset", "batch_size", "lr", "gamma", "milestones", "cg",
                                        "prune_every", "prune_end", "sparsity_init", "regrow", "subnets")}
                  | {"steps": results[0]["steps"]},
        "test_images": results[0]["test_images"], "step_time": st,
        "runs": [{k: v for k, v in x.items() if k not in ("_ckpt", "method")} for x in results],
    }
    res["targets"] = verdicts(res)
    res["wall_min"] = round((time.time() - t0) / 60, 1)
    out.mkdir(parents=True, exist_ok=True)
    by = {x["name"]: x for x in results}
    if "ast_gc" in by:
        ck = by["ast_gc"]["_ckpt"]
        subnet_sparsity(ck["history"], ck["method"]["mask_trace"], out / "ast_subnet_sparsity.png",
                        "AST+GC: mask sparsity over training (staggered updates) and test accuracy")
        subnet_overlap(SubnetMasks(model_from_checkpoint(ck)), out / "ast_overlap.png")
        conflicts(ck["method"]["gc_trace"], out / "ast_conflicts_gc.png",
                  title="AST+GC: conflicting inner-group gradients (measured before the correction)")
    if "ast_nogc" in by:
        conflicts(by["ast_nogc"]["method"]["gc_trace"], out / "ast_conflicts_nogc.png",
                  title="AST without GC: conflicting inner-group gradients")
    atomic_write_text(out / "ast.json", json.dumps(res, indent=1, default=float) + "\n")
    atomic_write_text(out / "ast.md", markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
