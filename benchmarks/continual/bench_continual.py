"""Chapter 5 on Split Fashion-MNIST: tables 21, 22 and 24 analogues, accuracy matrices, figure 22.

    nice -n 10 .venv/bin/python benchmarks/continual/bench_continual.py            # 30 steps of 128 per task
    # the committed run (results/continual.md lists its exact commands): one learner per process,
    #   --methods lump ptlf ascending finetune multitask --seeds 0 --steps-per-task 10 --batch-size 64
    #   --buffer-size 128 --bank-per-task 200 --test-per-task 200 --knn-k 4
    .venv/bin/python benchmarks/continual/bench_continual.py --report-only         # re-make the report
    .venv/bin/python benchmarks/continual/bench_continual.py --steps-per-task 0 --epochs 200 \\
        --device cuda --bank-per-task 0 --test-per-task 0 --out runs/continual-gpu   # the seed's budget

Every (seed, learner, method) run writes its own JSON under OUT/runs/ as soon as it ends, and runs
that already have one are skipped: a killed benchmark continues where it stopped, and more seeds can
be added later. The methods of one (seed, learner) run back to back in the order given (LUMP next to
PTLF), and the time, memory and FLOP ratios are taken within each such group, then averaged.
The report (continual.json, continual.md, the PNGs) is made at the end, or by --report-only, from
whatever runs exist.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "sw"))

from pesto.util import atomic_write_text  # noqa: E402

LEARNERS = ("simsiam", "barlowtwins")
METHODS = ("lump", "ptlf", "ptlf-ramp0.2", "ascending", "finetune", "multitask")
TABLE21 = ("finetune", "lump", "ascending", "ptlf", "ptlf-ramp0.2", "multitask")
TARGETS = {"side_by_side": ("time", 0.9), "memory": ("memory", 0.8), "bwd_flops": ("backward FLOPs", 0.7)}
COLUMNS = (("side_by_side", "time, side by side"), ("side_by_side_steps", "time, side by side, steps only"),
           ("time", "CPU time of the runs"), ("wall", "wall time of the runs"), ("memory", "memory (mean)"),
           ("memory_peak", "memory (peak)"), ("saved_mean", "saved activations"), ("bwd_flops", "backward FLOPs"))


def _none_if_zero(v):
    return None if v in (None, 0) else v


def variant(label: str) -> tuple[str, float | None]:
    """'ptlf' -> ('ptlf', None); 'ptlf-ramp0.2' -> ('ptlf', 0.2): PTLF with a shorter freezing ramp."""
    if "-ramp" in label:
        m, r = label.split("-ramp")
        return m, float(r)
    return label, None


def run_one(args, learner: str, label: str, seed: int) -> dict:
    from pesto.continual import ContinualConfig, run_continual
    method, ramp = variant(label)
    cfg = ContinualConfig(learner=learner, method=method, model=args.model, seed=seed, epochs=args.epochs,
                          tasks=args.tasks,
                          steps_per_task=_none_if_zero(args.steps_per_task), batch_size=args.batch_size,
                          lr=args.lr, proj_dim=args.proj_dim, buffer_size=args.buffer_size,
                          freeze_ratio=args.freeze_ratio, freeze_ramp=ramp or args.freeze_ramp,
                          bank_per_task=_none_if_zero(args.bank_per_task),
                          test_per_task=_none_if_zero(args.test_per_task), eval=args.eval, knn_k=args.knn_k,
                          device=args.device, threads=args.threads, progress=not args.no_progress, out=None)
    t0 = time.perf_counter()
    result = run_continual(cfg)
    result["wall_s"] = time.perf_counter() - t0
    result["command"] = args.command
    result["label"] = label
    return result


def held_from_start(run: dict) -> dict:
    """Cost ratios of a freezing run had each task's final frozen set held from the task's first step
    (what the seed's figures suggest), against no freezing: from shapes, one measured step per set."""
    import torch
    from pesto.continual.cost import StepMeter, param_bytes
    from pesto.continual.freeze import find_layers, freeze, unfreeze
    from pesto.continual.learners import build_learner
    c = run["config"]
    torch.manual_seed(0)
    L = build_learner(c["learner"], c["model"], 1, 28, c["proj_dim"]).train()
    layers = find_layers(L.backbone, torch.zeros(2, 1, 28, 28))
    x1, x2 = torch.randn(c["batch_size"], 1, 28, 28), torch.randn(c["batch_size"], 1, 28, 28)

    def step(frozen):
        for i in frozen:
            freeze(layers[i])
        m = StepMeter(L)
        with m.step():
            loss = L(x1, x2)
        loss.backward()
        L.zero_grad(set_to_none=True)
        for layer in layers:
            unfreeze(layer)
        return m.bwd_flops, m.saved_bytes

    f0, a0 = step([])
    fixed = param_bytes(L) + run["costs"][-1]["buffer_bytes"]
    per = [step(d["final_frozen"]) for d in run["decisions"]]
    steps = [cst["steps"] for cst in run["costs"]]
    flops = sum(f * n for (f, _), n in zip(per, steps)) / (f0 * sum(steps))
    mem = sum((a + fixed) * n for (_, a), n in zip(per, steps)) / ((a0 + fixed) * sum(steps))
    return {"bwd_flops": flops, "memory": mem}


def interleaved_time(run: dict, points: int = 6, reps: int = 2) -> dict:
    """The time ratio to LUMP measured side by side: for each task after the first, at ``points``
    evenly spaced steps of the run's freezing log, one training step with that step's frozen set
    and one without alternate (``reps`` times each, CPU time, same batch shapes, the same process),
    so both see the same machine. Task 1 trains the same as LUMP (ratio 1); the run's measured
    analysis CPU time (subspaces + probe) is added to PTLF's side in units of the LUMP step."""
    import torch
    from pesto.continual.cost import StepMeter
    from pesto.continual.freeze import find_layers, freeze, unfreeze
    from pesto.continual.learners import build_learner
    c = run["config"]
    torch.manual_seed(0)
    if c.get("threads"):
        torch.set_num_threads(c["threads"])
    L = build_learner(c["learner"], c["model"], 1, 28, c["proj_dim"]).train()
    opt = torch.optim.SGD(L.parameters(), lr=1e-6, momentum=0.9, weight_decay=5e-4)
    layers = find_layers(L.backbone, torch.zeros(2, 1, 28, 28))
    meter = StepMeter(L)
    x1, x2 = torch.randn(c["batch_size"], 1, 28, 28), torch.randn(c["batch_size"], 1, 28, 28)

    def timed(frozen) -> float:
        for i in frozen:
            freeze(layers[i])
        t0 = time.process_time()
        with meter.step():
            loss = L(x1, x2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        dt = time.process_time() - t0
        for layer in layers:
            unfreeze(layer)
        return dt

    timed([])                                                   # warm-up
    per_task, lump_steps = [1.0], []
    for d in run["decisions"][1:]:
        n = d["steps"]
        t_f = t_l = 0.0
        for k in range(points):
            at = round((k + 0.5) * n / points)
            frozen = [i for step, *idx in d["frozen_at"] if step <= at for i in idx]
            for _ in range(reps):
                t_f += timed(frozen)
                dt = timed([])
                t_l += dt
                lump_steps.append(dt)
        per_task.append(t_f / t_l)
    steps = [cst["steps"] for cst in run["costs"]]
    t_step = statistics.fmean(lump_steps) if lump_steps else 1.0
    overhead = run["totals"].get("overhead_cpu_s", 0.0)
    steps_only = sum(r * n for r, n in zip(per_task, steps)) / sum(steps)
    return {"per_task": per_task, "steps_only": steps_only, "lump_step_cpu_s": t_step,
            "with_analysis": steps_only + overhead / (t_step * sum(steps))}


def _ms(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _fmt(mean, std, digits=2, suffix=""):
    if mean is None:
        return "-"
    return f"{mean:.{digits}f}{suffix}" + (f" (±{std:.{digits}f})" if std else "")


def _cached(path: Path, make) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    value = make()
    atomic_write_text(path, json.dumps(value, indent=1) + "\n")
    return value


def report(args, runs: dict) -> dict:
    """Aggregate the runs into the tables, the targets and the plots."""
    from pesto.continual.plots import accuracy_matrices, freezing_decisions
    out = Path(args.out)
    seeds = sorted({s for (_, _, s) in runs})
    table21, table22, table24, targets = {}, {}, {}, []
    for learner in LEARNERS:
        rows = {}
        for method in TABLE21:
            rs = [runs[(learner, method, s)] for s in seeds if (learner, method, s) in runs]
            if rs:
                am, asd = _ms([r["accuracy"] for r in rs])
                fm, fsd = _ms([r["forgetting"] for r in rs])
                rows[method] = {"accuracy": am, "accuracy_std": asd, "forgetting": fm, "forgetting_std": fsd,
                                "seeds": [r["config"]["seed"] for r in rs]}
        if rows:
            table21[learner] = rows
        ratios = {}
        for method in ("ptlf", "ptlf-ramp0.2", "ascending"):
            per = {"time": [], "time_steps": [], "wall": [], "side_by_side": [], "side_by_side_steps": [], "memory": [], "bwd_flops": [], "memory_peak": [], "saved_mean": []}
            for s in seeds:
                a, b = runs.get((learner, method, s)), runs.get((learner, "lump", s))
                if a and b:
                    ta, tb = a["totals"], b["totals"]
                    per["time"].append(ta["cpu_s"] / tb["cpu_s"])
                    per["wall"].append(ta["time_s"] / tb["time_s"])
                    per["time_steps"].append((ta["cpu_s"] - ta.get("overhead_cpu_s", 0.0)) / tb["cpu_s"])
                    tm = _cached(out / "timing" / f"{learner}_{method}_s{s}.json", lambda: interleaved_time(a, args.timing_points))
                    per["side_by_side"].append(tm["with_analysis"])
                    per["side_by_side_steps"].append(tm["steps_only"])
                    per["memory"].append(ta["memory_bytes_mean"] / tb["memory_bytes_mean"])
                    per["memory_peak"].append(ta["memory_bytes_peak"] / tb["memory_bytes_peak"])
                    per["saved_mean"].append(ta["saved_bytes_mean"] / tb["saved_bytes_mean"])
                    per["bwd_flops"].append(ta["bwd_flops"] / tb["bwd_flops"])
            if per["time"]:
                ratios[method] = {k: dict(zip(("mean", "std"), _ms(v))) | {"n": len(v)} for k, v in per.items()}
                held = [held_from_start(runs[(learner, method, s)]) for s in seeds
                        if (learner, method, s) in runs and (learner, "lump", s) in runs]
                ratios[method]["held"] = {k: _ms([h[k] for h in held])[0] for k in ("bwd_flops", "memory")}
        if ratios:
            table22[learner] = ratios
        if "ptlf" in rows and "ascending" in rows:
            table24[learner] = {m: rows[m] for m in ("ascending", "ptlf")}
        if "ptlf" in rows and "lump" in rows:
            p, l = rows["ptlf"], rows["lump"]
            targets.append({"learner": learner, "target": "accuracy within 1 point of LUMP",
                            "measured": f"{p['accuracy'] - l['accuracy']:+.2f} points",
                            "met": p["accuracy"] >= l["accuracy"] - 1.0})
            targets.append({"learner": learner, "target": "forgetting no more than LUMP's",
                            "measured": f"{p['forgetting']:.2f} vs {l['forgetting']:.2f}",
                            "met": p["forgetting"] <= l["forgetting"]})
        if "ptlf" in ratios:
            for k, (name, limit) in TARGETS.items():
                m = ratios["ptlf"][k]["mean"]
                targets.append({"learner": learner, "target": f"{name} <= {limit}x LUMP", "measured": f"{m:.3f}x",
                                "met": m <= limit})
        if "ptlf" in rows and "ascending" in rows:
            targets.append({"learner": learner, "target": "PTLF at least as accurate as ascending freezing",
                            "measured": f"{rows['ptlf']['accuracy']:.2f} vs {rows['ascending']['accuracy']:.2f}",
                            "met": rows["ptlf"]["accuracy"] >= rows["ascending"]["accuracy"]})
        # plots from the first seed that has them
        s0 = next((s for s in seeds if any((learner, m, s) in runs for m in TABLE21)), None)
        if s0 is not None:
            mats = {m: runs[(learner, m, s0)]["acc"] for m in TABLE21 if (learner, m, s0) in runs}
            accuracy_matrices(mats, out / f"acc_matrix_{learner}.png",
                              f"{learner}: kNN accuracy (%) on Split Fashion-MNIST, seed {s0}")
            decs = {m: runs[(learner, m, s0)]["decisions"] for m in ("ptlf", "ptlf-ramp0.2", "ascending")
                    if (learner, m, s0) in runs}
            if decs:
                n_layers = len(next(iter(runs.values()))["layers"])
                freezing_decisions(decs, n_layers, out / f"freezing_{learner}.png",
                                   f"{learner}: layers updated / frozen per task, seed {s0}")
    any_run = next(iter(runs.values()))
    summary = {
        "commands": sorted({r.get("command", args.command) for r in runs.values()}), "budget": {k: any_run["config"][k] for k in (
            "model", "tasks", "epochs", "steps_per_task", "batch_size", "lr", "proj_dim", "buffer_size", "freeze_ratio",
            "freeze_ramp", "energy", "bank_per_task", "test_per_task", "eval", "knn_k", "threads", "device")},
        "split": any_run["tasks"], "seeds": seeds, "table21": table21, "table22": table22, "table24": table24, "targets": targets,
        "decisions": {f"{l}_{m}_s{s}": [{"task": d["task"], "final_frozen": d["final_frozen"],
                                          "scores": [round(x, 4) for x in d["scores"]]} for d in r["decisions"]]
                      for (l, m, s), r in runs.items() if m in ("ptlf", "ptlf-ramp0.2", "ascending")},
        "layers": any_run["layers"],
        "runs": {f"{l}_{m}_s{s}": {"accuracy": r.get("accuracy"), "forgetting": r.get("forgetting"),
                                   "acc": r["acc"], "totals": r["totals"], "wall_s": r.get("wall_s")}
                 for (l, m, s), r in sorted(runs.items())},
    }
    atomic_write_text(out / "continual.json", json.dumps(summary, indent=1) + "\n")
    atomic_write_text(out / "continual.md", markdown(summary))
    return summary


def markdown(s: dict) -> str:
    b = s["budget"]
    n_tasks = len(s["split"])
    lines = [f"# Chapter 5 on Split Fashion-MNIST ({'/'.join(','.join(map(str, t)) for t in s['split'])})", "",
             "Commands (the runs, then `--report-only` for this report):", "", "```",
             *[f"nice -n 10 {c}" for c in s["commands"]], "```", "",
             f"Budget: {b['model']}, {b['steps_per_task'] or 'all'} steps of {b['batch_size']} image pairs per task "
             f"({b['epochs']} epoch cap), lr {b['lr']} (cosine per task), projector {b['proj_dim']}, buffer "
             f"{b['buffer_size']}, freezing ratio {b['freeze_ratio']} (ramp {b['freeze_ramp']} of the task), "
             f"energy {b['energy']}; {b['eval']} evaluation (k = {b['knn_k']}) on {b['bank_per_task'] or 'all'} bank / "
             f"{b['test_per_task'] or 'all'} test images per task; device {b['device'] or 'auto'}, "
             f"{b['threads']} thread(s). Seeds: {', '.join(map(str, s['seeds']))}.", "",
             "## Table 21 analogue: accuracy and forgetting (%, mean (±std) over seeds)", "",
             "| learner | method | accuracy | forgetting |", "|---|---|---|---|"]
    for learner, rows in s["table21"].items():
        for m, r in rows.items():
            lines.append(f"| {learner} | {m} | {_fmt(r['accuracy'], r['accuracy_std'])} | "
                         f"{_fmt(r['forgetting'], r['forgetting_std'])} |")
    lines += ["", "## Table 22 analogue: cost relative to LUMP", "",
              "Time, side by side: for every task after the first, at 6 evenly spaced steps of the run's freezing "
              "log, a training step with that step's frozen set and one without alternate in one process (CPU "
              "time, 2 repetitions each), so both see the same machine; the first task counts 1, and the run's "
              "own CPU time for PTLF's once-per-task analysis (buffer subspaces + probe gradient) is added in "
              "units of the LUMP step (\"steps only\" leaves it out). The CPU and wall times of the runs "
              "themselves are given too; on this shared machine they swing by tens of percent between runs. "
              "Memory: parameters + activations saved for backward + replay buffer, mean over the steps (peak: the "
              "largest step). Backward FLOPs: conv/linear grad-input + grad-weight terms (pesto.continual.cost).", "",
              "| learner | method | " + " | ".join(name for _, name in COLUMNS) + " |",
              "|---|---|" + "---|" * len(COLUMNS)]
    for learner, ratios in s["table22"].items():
        for m, r in ratios.items():
            lines.append(f"| {learner} | {m} | " + " | ".join(
                _fmt(r[k]["mean"], r[k]["std"], 3, "x") for k, _ in COLUMNS) + " |")
    lines += ["", "If every task's final frozen set had been held from the task's first step (the schedule the "
              "seed's ratios suggest; computed from shapes with one measured step per frozen set, the first "
              "task unfrozen as in the runs):", "",
              "| learner | method | memory (mean) | backward FLOPs |", "|---|---|---|---|"]
    for learner, ratios in s["table22"].items():
        for m, r in ratios.items():
            lines.append(f"| {learner} | {m} | {r['held']['memory']:.3f}x | {r['held']['bwd_flops']:.3f}x |")
    if s["table24"]:
        lines += ["", "## Table 24 analogue: task-correlated vs ascending-order freezing", "",
                  "| learner | freezing | accuracy | forgetting |", "|---|---|---|---|"]
        for learner, rows in s["table24"].items():
            for m, r in rows.items():
                lines.append(f"| {learner} | {'ascending (top layers)' if m == 'ascending' else 'PTLF'} | "
                             f"{_fmt(r['accuracy'], r['accuracy_std'])} | {_fmt(r['forgetting'], r['forgetting_std'])} |")
    lines += ["", "## Targets", "", "| learner | target | measured | met |", "|---|---|---|---|"]
    for t in s["targets"]:
        lines.append(f"| {t['learner']} | {t['target']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |")
    lines += ["", "## Final freezing decisions (figure 22), first seed", "",
              "Layers (index: name): " + ", ".join(f"{i}: {n}" for i, n in enumerate(s["layers"])), "",
              "| run | " + " | ".join(f"task {t + 1}" for t in range(1, n_tasks)) + " |",
              "|---" * n_tasks + "|"]
    first = min(s["seeds"]) if s["seeds"] else 0
    for key, decs in s["decisions"].items():
        if key.endswith(f"_s{first}"):
            lines.append(f"| {key} | " + " | ".join(str(d["final_frozen"]) for d in decs[1:]) + " |")
    lines += ["", "Plots: `acc_matrix_<learner>.png` (accuracy matrices), `freezing_<learner>.png` (figure 22).", ""]
    return "\n".join(lines)


def load_runs(out: Path) -> dict:
    runs = {}
    for p in sorted((out / "runs").glob("*.json")):
        r = json.loads(p.read_text())
        c = r["config"]
        runs[(c["learner"], r.get("label", c["method"]), c["seed"])] = r
    return runs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--learners", nargs="+", default=list(LEARNERS), choices=LEARNERS)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS,
                   help="ptlf-ramp0.2: PTLF whose frozen share reaches the ratio after 20%% of each task")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--model", default="resnet20")
    p.add_argument("--tasks", default="0,1/2,3/4,5/6,7/8,9", help="the class split (default: Split Fashion-MNIST)")
    p.add_argument("--epochs", type=int, default=1, help="epochs per task (a cap when --steps-per-task is set)")
    p.add_argument("--steps-per-task", type=int, default=30, help="0: whole epochs")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.03)
    p.add_argument("--proj-dim", type=int, default=512)
    p.add_argument("--buffer-size", type=int, default=256)
    p.add_argument("--freeze-ratio", type=float, default=0.4)
    p.add_argument("--freeze-ramp", type=float, default=1.0)
    p.add_argument("--bank-per-task", type=int, default=500, help="0: all training images of the task")
    p.add_argument("--test-per-task", type=int, default=500, help="0: all test images of the task")
    p.add_argument("--knn-k", type=int, default=10, help="kNN neighbours (10 of a 500-image bank: LUMP's 2 %%)")
    p.add_argument("--eval", default="knn", choices=("knn", "linear"))
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--timing-points", type=int, default=6, help="steps per task timed side by side (x 2 repetitions)")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    args.command = "python benchmarks/continual/bench_continual.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    out = Path(args.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        for seed in args.seeds:
            for learner in args.learners:
                for method in args.methods:
                    path = out / "runs" / f"{learner}_{method}_s{seed}.json"
                    if path.exists():
                        continue
                    print(f"== {learner} {method} seed {seed}", flush=True)
                    result = run_one(args, learner, method, seed)
                    atomic_write_text(path, json.dumps(result, indent=1) + "\n")
                    print(f"   accuracy {result['accuracy']:.2f}  forgetting {result['forgetting']}  "
                          f"train {result['totals']['time_s']:.0f} s ({result['totals']['cpu_s']:.0f} s CPU)  "
                          f"wall {result['wall_s']:.0f} s", flush=True)
    runs = load_runs(out)
    if not runs:
        print("no runs yet")
        return 1
    summary = report(args, runs)
    print(markdown(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
