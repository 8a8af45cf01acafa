#!/usr/bin/env python
"""On-device transfer learning (chapter 4): Rep-Net against the baselines on two real tasks.

A WPC ternary ResNet-20 trained by `pesto train` on Fashion-MNIST classes 0-4 only is the frozen
backbone. It is transferred to (1) Fashion-MNIST classes 5-9 and (2) scikit-learn's 8x8 digits
(1,797 images resized to 28x28; fixed split of pesto.data: 1,347 train / 450 test) with every
method of pesto.transfer: Rep-Net in the five connection designs of table 17, last-layer, full
and bias+BN fine-tuning and input reprogramming. Each run is one `pesto transfer` process (so
its peak RSS is its own), two at a time; the Rep-Net runs are then exported with
`pesto export-to-fpga`, their accelerated layers compared byte for byte with the backbone's own
artifact, and their integer pipeline (pesto.reference, the `ref` backend) scored on the whole
test split beside the torch accuracy.

CPU budget (default, a shared 2-core machine): backbone = the fmnist-demo recipe (768 steps of
batch 128); Fashion-MNIST 5-9: 4 epochs x 48 steps of batch 64 from an 8,192-image subset (the
per-epoch curve on 2,000 test images), the final model scored on all 5,000 test images of those
classes; digits: 10 epochs x 42 steps of batch 32, scored on the 450 test images. Adam with a
cosine decay, lr 5e-3 (1e-3 for full fine-tuning, see LR). On a GPU:

    python benchmarks/transfer/bench_transfer.py                                   # CPU budget
    python benchmarks/transfer/bench_transfer.py --budget gpu --jobs 4 --threads 0 --runs runs/transfer-gpu

Writes <out>/transfer.json, transfer.md, accuracy_memory.png and epochs.png (figure 19).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUDGETS = {
    # task -> pesto transfer options (the per-epoch curves use --test-subset; the tables score the
    # final checkpoint on the whole test split)
    "cpu": {"backbone": ["--recipe", "fmnist-demo"],
            "fmnist59": ["--epochs", "4", "--batch-size", "64", "--subset", "8192", "--steps-per-epoch", "48",
                         "--test-subset", "2000"],
            "digits": ["--epochs", "10", "--batch-size", "32"]},
    "gpu": {"backbone": ["--recipe", "fmnist"],
            "fmnist59": ["--epochs", "30", "--batch-size", "64"],
            "digits": ["--epochs", "100", "--batch-size", "32"]},
}
# learning rate per method: the better of 1e-3 and 5e-3 after one 128-step epoch on Fashion-MNIST 5-9
# (full fine-tuning 96.1 vs 95.6 %, Rep-Net 72.5 vs 94.0 %, last layer 57.1 vs 72.3 %)
LR = {"full": "1e-3"}
DEFAULT_LR = "5e-3"
TASKS = {"fmnist59": ["--data", "fashion-mnist", "--classes", "5-9"], "digits": ["--data", "digits"]}
TASK_NAMES = {"fmnist59": "Fashion-MNIST 5-9", "digits": "digits (8x8 -> 28x28)"}
RUNS = {  # run -> pesto transfer options; the first five are table 17's designs
    "repnet-dual": ["--method", "repnet", "--design", "dual"],
    "repnet-none": ["--method", "repnet", "--design", "none"],
    "repnet-down": ["--method", "repnet", "--design", "down"],
    "repnet-up": ["--method", "repnet", "--design", "up"],
    "repnet-dual-all": ["--method", "repnet", "--design", "dual-all"],
    "last": ["--method", "last"],
    "full": ["--method", "full"],
    "bias-bn": ["--method", "bias-bn"],
    "input-reprogram": ["--method", "input-reprogram"],
}
# test images the integer pipeline (numpy reference, ~50 ms per image on one core) scores per task
DEPLOY_IMAGES = {"fmnist59": 1000, "digits": 0}
DESIGN_RUNS = ["repnet-none", "repnet-down", "repnet-up", "repnet-dual", "repnet-dual-all"]
LABELS = {"repnet-dual": "Rep-Net (dual, d)", "repnet-none": "no connect (a)", "repnet-down": "down connect (b)",
          "repnet-up": "up connect (c)", "repnet-dual-all": "dual, every block", "last": "FT last layer",
          "full": "FT full", "bias-bn": "FT bias + BN", "input-reprogram": "input reprog. + last"}
PESTO = [sys.executable, "-m", "pesto.cli"]


def sh(cmd: list[str], log: Path, env: dict) -> float:
    t0 = time.perf_counter()
    with open(log, "w") as f:
        f.write("$ " + shlex.join(cmd) + "\n")
        f.flush()
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
    if r.returncode:
        raise SystemExit(f"failed ({r.returncode}): {shlex.join(cmd)}; see {log}")
    return time.perf_counter() - t0


def display(cmd: list[str]) -> str:
    return shlex.join(["pesto"] + cmd[len(PESTO):])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", choices=BUDGETS, default="cpu")
    ap.add_argument("--runs", default="runs/transfer", help="checkpoints and logs (resumable)")
    ap.add_argument("--out", default=str(HERE / "results"), help="results folder")
    ap.add_argument("--jobs", type=int, default=2, help="transfer runs side by side")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run (0: torch's choice)")
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--only", nargs="+", default=list(RUNS), choices=list(RUNS), help="runs to make")
    ap.add_argument("--deploy-images", type=int, default=None,
                    help="test images for the integer pipeline (0: all; default: DEPLOY_IMAGES)")
    args = ap.parse_args(argv)
    t_start = time.time()
    runs, out = Path(args.runs), Path(args.out)
    runs.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    threads = ["--threads", str(args.threads)] if args.threads else []
    budget = BUDGETS[args.budget]
    commands: list[str] = []

    # 1. the backbone: WPC ternary ResNet-20 on Fashion-MNIST classes 0-4, and its own artifact
    backbone = runs / "backbone.pt"
    cmd = PESTO + ["train", *budget["backbone"], "--classes", "0-4", *threads, "--no-progress", "--out", str(backbone), "--summary-json", str(runs / "backbone.json")]
    commands.append(display(cmd))
    if not (runs / "backbone.json").is_file():
        print("training the backbone:", display(cmd), flush=True)
        sh(cmd, runs / "backbone.log", env)
    bb_art = runs / "backbone.pesto"
    cmd = PESTO + ["export-to-fpga", str(backbone), "-o", str(bb_art), "-q"]
    commands.append(display(cmd))
    if not bb_art.is_file():
        sh(cmd, runs / "backbone_export.log", env)

    # 2. the transfer runs, `--jobs` at a time (each resumes its checkpoint if it exists)
    jobs = []
    order = ["repnet-dual", "last", "full", "input-reprogram", "bias-bn", "repnet-none", "repnet-down", "repnet-up",
             "repnet-dual-all"]
    for run in [r for r in order if r in args.only]:
        for task in args.tasks:
            ck = runs / f"{task}_{run}.pt"
            cmd = PESTO + ["transfer", str(backbone), *TASKS[task], *budget[task], *RUNS[run],
                           "--lr", LR.get(run, DEFAULT_LR), *threads,
                           "--backbone-artifact", str(bb_art), "--no-progress", "--resume", "--out", str(ck),
                           "--summary-json", str(runs / f"{task}_{run}.json")]
            commands.append(display(cmd))
            jobs.append((task, run, cmd))

    def go(job):
        task, run, cmd = job
        done = runs / f"{task}_{run}.json"
        if done.is_file():
            return
        print(f"[{time.strftime('%H:%M:%S')}] {task} {run}", flush=True)
        s = sh(cmd, runs / f"{task}_{run}.log", env)
        print(f"[{time.strftime('%H:%M:%S')}] {task} {run} done in {s / 60:.1f} min", flush=True)

    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        list(pool.map(go, jobs))

    # 3. deployment of the Rep-Net runs, scored through the integer pipeline
    for task in args.tasks:
        for run in args.only:
            if not run.startswith("repnet") and run != "last":
                continue
            cmd = PESTO + ["export-to-fpga", str(runs / f"{task}_{run}.pt"), "--backbone-artifact", str(bb_art),
                           "-o", str(runs / f"{task}_{run}.pesto")]
            commands.append(display(cmd))
            if not (runs / f"{task}_{run}.pesto").is_file():
                sh(cmd, runs / f"{task}_{run}_export.log", env)
    res = collect(args, runs, bb_art, commands, time.time() - t_start)
    atomic_json(out / "transfer.json", res)
    (out / "transfer.md").write_text(markdown(res))
    plots(res, out)
    print(markdown(res))
    return 0


def atomic_json(path: Path, obj) -> None:
    from pesto.util import atomic_write_text
    atomic_write_text(path, json.dumps(obj, indent=1) + "\n")


def deployed_accuracy(task: str, artifact_path: Path, ckpt: dict, limit: int) -> dict:
    """The integer pipeline (driver, `ref` backend) and the torch model on the same test images."""
    import numpy as np
    import torch
    from pesto import artifact
    from pesto.data import load_splits, select_classes
    from pesto.driver import Accelerator
    from pesto.reference.network import normalize
    from pesto.transfer.checkpoint import build_net, load_backbone
    from pesto.transfer.deploy import tconv_layers
    data = {"fmnist59": ("fashion-mnist", [5, 6, 7, 8, 9]), "digits": ("digits", None)}[task]
    _, test = load_splits(data[0], augment=False, input_size=28)
    test = select_classes(test, data[1])
    x, y = test.images.numpy(), test.labels.numpy()
    if limit:
        x, y = x[:limit], y[:limit]
    art = artifact.load(artifact_path)
    t0 = time.perf_counter()
    with Accelerator(art, backend="ref") as acc:
        pred = np.concatenate([acc.classify(x[i:i + 250]) for i in range(0, len(x), 250)])
    seconds = time.perf_counter() - t0
    net = build_net(ckpt, load_backbone(ckpt))
    with torch.no_grad():
        want = np.concatenate([net(torch.from_numpy(normalize(art, x[i:i + 250]))).argmax(1).numpy()
                               for i in range(0, len(x), 250)])
    return {"images": int(len(y)), "accuracy": float(100 * (pred == y).mean()),
            "torch_accuracy": float(100 * (want == y).mean()), "agreement": float(100 * (pred == want).mean()),
            "seconds": seconds, "tconv_layers": len(tconv_layers(artifact_path.read_bytes()))}


def torch_accuracy(t: dict) -> dict:
    """The torch model of a transfer checkpoint on the task's whole test split."""
    import torch
    from torch.utils.data import DataLoader
    from pesto.train.loop import evaluate
    from pesto.transfer.checkpoint import build_net, load_backbone
    from pesto.transfer.loop import TransferConfig, task_splits
    cfg = TransferConfig.from_dict({**t["args"], "test_subset": None})
    bb = load_backbone(t)
    _, test = task_splits(cfg, bb)
    _, acc = evaluate(build_net(t, bb), DataLoader(test, 500), torch.device("cpu"))
    return {"accuracy": acc, "images": len(test)}


def collect(args, runs: Path, bb_art: Path, commands: list[str], wall_s: float) -> dict:
    import torch
    from pesto.transfer.checkpoint import load_transfer
    from pesto.transfer.deploy import tconv_layers
    from pesto.train.checkpoint import load_checkpoint
    bb = json.loads((runs / "backbone.json").read_text())
    bb_layers = tconv_layers(bb_art.read_bytes())
    state = load_checkpoint(runs / "backbone.pt")["state_dict"]
    bb["parameters"] = sum(v.numel() for k, v in state.items() if v.is_floating_point() and "running" not in k)
    res = {"command": "python benchmarks/transfer/bench_transfer.py " + " ".join(sys.argv[1:]),
           "commands": commands, "budget": args.budget, "machine": f"{platform.machine()} {os.cpu_count()} cores",
           "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "wall_min": wall_s / 60,
           "backbone": {**bb, "tconv_layers": len(bb_layers)}, "tasks": {}}
    for task in args.tasks:
        rows = {}
        for run in args.only:
            t = load_transfer(runs / f"{task}_{run}.pt")
            hist = t["history"]
            mem = t["memory"]
            full_test = torch_accuracy(t)
            row = {"method": t["method"], "design": t["design"] if t["method"] == "repnet" else None,
                   "test_acc": full_test["accuracy"], "test_images": full_test["images"],
                   "last_epoch_acc": hist[-1]["test_acc"], "best_acc": max(h["test_acc"] for h in hist),
                   "epochs": [h["test_acc"] for h in hist], "train_min": sum(h["time_s"] for h in hist) / 60,
                   "steps": sum(h["steps"] for h in hist), "memory": mem,
                   "connectors": [c["op"] for c in t["connectors"]]}
            art = runs / f"{task}_{run}.pesto"
            if art.is_file():
                limit = args.deploy_images if args.deploy_images is not None else DEPLOY_IMAGES[task]
                dep = deployed_accuracy(task, art, t, limit)
                same = tconv_layers(art.read_bytes()) == bb_layers
                row["deployed"] = {**dep, "tconv_byte_identical": same}
            rows[run] = row
        res["tasks"][task] = rows
    res["targets"] = targets(res)
    res["board"] = {task: board_estimate(rows, res["backbone"]) for task, rows in res["tasks"].items()}
    return res


# The PYNQ-Z1's ARM Cortex-A9 at 650 MHz: NEON issues a 4-lane float32 multiply-accumulate every 2 cycles,
# 4 FLOP/cycle = 2.6 GFLOP/s per core at peak (3.99 GFLOP/s measured at 1 GHz on a Cortex-A9); a training
# step in numpy/BLAS reaches a fraction of it, assumed 10 % (pessimistic) to 50 % (optimistic).
A9_PEAK_FLOPS = 4 * 650e6
A9_SUSTAINED = (0.10, 0.50)
ACCEL_MS_PER_IMAGE = 2.29   # the 18 accelerated layers of the 28x28 ResNet-20 on the RTL (docs/benchmarks.md)


def board_estimate(rows: dict, bb: dict) -> dict:
    """Memory and ARM time per training step on the board, from this run's measured figures."""
    out = {}
    fwd = rows.get("last", {}).get("memory", {}).get("flops")   # backbone forward (+ a linear layer)
    for run in ("repnet-dual", "last", "full"):
        if run not in rows:
            continue
        m = rows[run]["memory"]
        batch = m["batch"]
        mem = m["saved_activation_bytes"] + m["trainable_bytes"] + 4 * bb["parameters"] + batch * 28 * 28 * 4
        arm = m["flops"] - (fwd or 0) if run != "full" else m["flops"]
        e = {"batch": batch, "memory_bytes": mem, "flops": m["flops"], "arm_flops": arm,
             "accel_s": ACCEL_MS_PER_IMAGE * batch / 1e3 if run != "full" else None,
             "arm_s": [arm / (A9_PEAK_FLOPS * f) for f in reversed(A9_SUSTAINED)],
             "x86_step_s": m["step_seconds"]}
        out[run] = e
    return out


def targets(res: dict) -> dict:
    out = {}
    for task, rows in res["tasks"].items():
        if not all(k in rows for k in ("repnet-dual", "last", "input-reprogram", "full")):
            continue
        rn, full = rows["repnet-dual"], rows["full"]
        act = lambda r: r["memory"]["saved_activation_bytes"]  # noqa: E731
        designs = {k: rows[k]["test_acc"] for k in DESIGN_RUNS if k in rows}
        out[task] = {
            "beats_last": rn["test_acc"] > rows["last"]["test_acc"],
            "beats_input_reprogram": rn["test_acc"] > rows["input-reprogram"]["test_acc"],
            "gap_to_full": full["test_acc"] - rn["test_acc"],
            "within_2_of_full": full["test_acc"] - rn["test_acc"] <= 2.0,
            "activation_ratio_full_over_repnet": act(full) / act(rn),
            "ratio_at_least_3": act(full) / act(rn) >= 3.0,
            "dual_at_least_as_good": all(rn["test_acc"] >= v for v in designs.values()),
            "design_order": sorted(designs, key=lambda k: -designs[k]),
        }
    return out


def deployed(d) -> str:
    if not d:
        return "-"
    return f"{d['accuracy']:.2f} / {d['torch_accuracy']:.2f} ({d['images']} img, {d['agreement']:.1f} % same)"


def mb(v) -> str:
    return "-" if v is None else f"{v / 1e6:.2f}"


def markdown(res: dict) -> str:
    bb = res["backbone"]
    lines = [
        "# Transfer learning: Rep-Net vs baselines (chapter 4, tables 17-19)", "",
        f"Made by `{res['command']}` on {res['machine']} (torch {res['torch']}, {res['date']}, "
        f"{res['wall_min']:.0f} min wall for what was not already made), budget `{res['budget']}`.", "",
        f"Backbone: ResNet-20, WPC ternary (Cg 16), trained on Fashion-MNIST classes 0-4 only: test accuracy "
        f"{bb['test_acc']:.2f}% (5,000 test images of those classes), group sparsity "
        f"{100 * bb['group_sparsity']:.1f}%, eq 2.8 compression {bb['compression_rate']:.1f}x, "
        f"{bb['tconv_layers']} accelerated layers. It stays frozen (BN in inference mode) for Rep-Net, "
        f"last-layer and input reprogramming.", "",
        "Memory columns, measured per run on one training step (batch in the table) in a fresh process: "
        "**act.** = bytes autograd saved for backward (unique storages, weights excluded; "
        "`saved_tensors_hooks`); **train.** = trainable parameters + gradients + Adam state; "
        "**t16** = table 16's analytic activation count (x4 bytes); **RSS+** = rise of the peak resident "
        "set during the step; **x** = full fine-tune's act. / this run's.", "",
    ]
    for task, rows in res["tasks"].items():
        full_act = rows.get("full", {}).get("memory", {}).get("saved_activation_bytes")
        first = next(iter(rows.values()))
        lines += [f"## {TASK_NAMES[task]} (table 18/19 analogue)", "",
                  f"batch {first['memory']['batch']}, {first['steps']} steps per run", "",
                  "| method | test acc % | deployed: int / torch % | act. MB | x | train. MB | t16 MB | RSS+ MB | "
                  "trainable params |", "|---|---|---|---|---|---|---|---|---|"]
        for run in ["repnet-dual", "last", "full", "bias-bn", "input-reprogram"]:
            if run not in rows:
                continue
            r, m = rows[run], rows[run]["memory"]
            dep = r.get("deployed")
            ratio = f"{full_act / m['saved_activation_bytes']:.1f}" if full_act and m["saved_activation_bytes"] else "-"
            lines.append(f"| {LABELS[run]} | {r['test_acc']:.2f} | {deployed(dep)} | "
                         f"{mb(m['saved_activation_bytes'])} | {ratio} | {mb(m['trainable_bytes'])} | "
                         f"{mb(m['table16']['activation_bytes'])} | {mb(m['step_rss_rise_bytes'])} | "
                         f"{m['trainable_params']:,} |")
        lines += ["", f"### {TASK_NAMES[task]}: connection designs (table 17 analogue)", "",
                  "| design | test acc % | best epoch acc % (curve) | deployed: int / torch % | act. MB | train. MB | "
                  "connectors |", "|---|---|---|---|---|---|---|"]
        for run in DESIGN_RUNS:
            if run not in rows:
                continue
            r, m = rows[run], rows[run]["memory"]
            lines.append(f"| {LABELS[run]} | {r['test_acc']:.2f} | {r['best_acc']:.2f} | "
                         f"{deployed(r.get('deployed'))} | {mb(m['saved_activation_bytes'])} | "
                         f"{mb(m['trainable_bytes'])} | {len(r['connectors'])} |")
        same = [r["deployed"]["tconv_byte_identical"] for r in rows.values() if "deployed" in r]
        if same:
            lines += ["", f"Deployed artifacts: {sum(same)}/{len(same)} have every accelerated layer byte-identical "
                          f"to the backbone's own artifact."]
        lines.append("")
    lines += ["## Targets", ""]
    for task, t in res["targets"].items():
        yes = lambda b: "met" if b else "NOT met"  # noqa: E731
        lines += [f"- {TASK_NAMES[task]}: Rep-Net > last layer: {yes(t['beats_last'])}; > input reprogramming: "
                  f"{yes(t['beats_input_reprogram'])}; within 2 points of full fine-tune: "
                  f"{yes(t['within_2_of_full'])} (gap {t['gap_to_full']:+.2f}); >= 3x less activation memory "
                  f"than full: {yes(t['ratio_at_least_3'])} ({t['activation_ratio_full_over_repnet']:.1f}x); dual "
                  f">= every other design: {yes(t['dual_at_least_as_good'])} (order: "
                  f"{' > '.join(t['design_order'])})"]
    lines += ["", "## Training on the board (estimate from the figures above)", "",
              "Memory = saved activations + trainable state + the backbone's float32 weights + the input batch. ARM "
              "time = FLOPs of the step (torch's count) that the ARM would run / (2.6 GFLOP/s NEON peak per core x "
              "50 % .. 10 %); with Rep-Net and last-layer the backbone's forward runs on the accelerator "
              f"({ACCEL_MS_PER_IMAGE} ms per image, RTL cycles at 100 MHz) and its FLOPs leave the ARM's share; "
              "full fine-tuning needs the float backbone on the ARM.", "",
              "| task | method | batch | memory MB | FLOPs/step (G) | ARM share (G) | accelerator s | ARM s (one core) |",
              "|---|---|---|---|---|---|---|---|"]
    for task, runs_ in res.get("board", {}).items():
        for run, e in runs_.items():
            acc = "-" if e["accel_s"] is None else f"{e['accel_s']:.2f}"
            lines.append(f"| {TASK_NAMES[task]} | {LABELS[run]} | {e['batch']} | {e['memory_bytes'] / 1e6:.1f} | "
                         f"{e['flops'] / 1e9:.2f} | {e['arm_flops'] / 1e9:.2f} | {acc} | "
                         f"{e['arm_s'][0]:.1f} .. {e['arm_s'][1]:.1f} |")
    lines += ["", "Commands:", "", "```"] + res["commands"] + ["```", ""]
    return "\n".join(lines)


def plots(res: dict, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401
    tasks = list(res["tasks"])
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.5), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for run, r in res["tasks"][task].items():
            m = r["memory"]
            x = (m["saved_activation_bytes"] + m["trainable_bytes"]) / 1e6
            ax.scatter([x], [r["test_acc"]], s=50, marker="*" if run == "repnet-dual" else "o")
            ax.annotate(LABELS[run], (x, r["test_acc"]), fontsize=8, xytext=(4, 2), textcoords="offset points")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel("training memory per step: saved activations + trainable state (MB, log)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(TASK_NAMES[task])
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "accuracy_memory.png", dpi=120)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.5), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for run in DESIGN_RUNS + ["last", "input-reprogram", "full"]:
            r = res["tasks"][task].get(run)
            if r:
                ax.plot(range(1, len(r["epochs"]) + 1), r["epochs"], label=LABELS[run],
                        linestyle="-" if run in DESIGN_RUNS else ":", linewidth=2 if run == "repnet-dual" else 1)
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{TASK_NAMES[task]} (figure 19 analogue)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "epochs.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
