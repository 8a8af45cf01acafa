"""From continual self-supervised learning to the accelerator, end to end, with the real commands.

    nice -n 10 .venv/bin/python benchmarks/continual/to_accelerator.py

1. `pesto continual`: SimSiam + PTLF on Split Fashion-MNIST (5 tasks), ResNet-20 -> a backbone-only
   checkpoint (no classifier);
2. `pesto train --init` that checkpoint: WPC fine-tuning (ternary weights, PE-group sparsity) with a
   fresh classifier, and the same schedule from a random initialisation beside it;
3. `pesto demo --checkpoint`: export to the accelerator artifact, float vs integer-pipeline accuracy,
   and test images through the accelerator RTL (Verilator), bit for bit against the reference.

Writes benchmarks/continual/results/accelerator.json and accelerator.md (the commands, the figures);
the checkpoints and the artifact go to --work (default runs/continual-e2e).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "sw"))

from pesto.util import atomic_write_text  # noqa: E402


def sh(cmd: list[str], log: Path) -> float:
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    t0 = time.perf_counter()
    with open(log, "w") as f:
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=dict(os.environ, OMP_NUM_THREADS="1"))
    if r.returncode:
        print(log.read_text()[-3000:])
        raise SystemExit(f"command failed ({r.returncode}): {' '.join(cmd)}")
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default=str(ROOT / "runs" / "continual-e2e"))
    p.add_argument("--steps-per-task", type=int, default=30)
    p.add_argument("--train-epochs", type=int, default=2, help="WPC fine-tuning epochs of the fmnist-demo subset")
    p.add_argument("--images", type=int, default=1000, help="test images for float vs integer accuracy")
    p.add_argument("--sim-images", type=int, default=1)
    p.add_argument("--out", default=str(HERE / "results"))
    args = p.parse_args(argv)
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    pesto = [str(Path(sys.executable).parent / "pesto")]
    ssl = work / "ptlf_simsiam.pt"
    cmds = {
        "continual": pesto + ["continual", "--learner", "simsiam", "--method", "ptlf", "--steps-per-task",
                              str(args.steps_per_task), "--bank-per-task", "500", "--test-per-task", "500",
                              "--knn-k", "10", "--threads", "1", "--no-progress", "--out", str(ssl),
                              "--summary-json", str(work / "continual.json")],
    }
    train_common = ["train", "--recipe", "fmnist-demo", "--epochs", str(args.train_epochs), "--milestones",
                    str(max(args.train_epochs - 1, 1)), "--threads", "1", "--no-progress"]
    cmds["wpc_from_ssl"] = pesto + train_common + ["--init", str(ssl), "--out", str(work / "wpc_from_ssl.pt"),
                                                   "--summary-json", str(work / "wpc_from_ssl.json")]
    cmds["wpc_from_scratch"] = pesto + train_common + ["--out", str(work / "wpc_from_scratch.pt"),
                                                       "--summary-json", str(work / "wpc_from_scratch.json")]
    cmds["demo"] = pesto + ["demo", "--checkpoint", str(work / "wpc_from_ssl.pt"), "--images", str(args.images),
                            "--sim-images", str(args.sim_images), "-o", str(work / "demo")]
    wall = {}
    for name, cmd in cmds.items():
        done = {"continual": work / "continual.json", "wpc_from_ssl": work / "wpc_from_ssl.json",
                "wpc_from_scratch": work / "wpc_from_scratch.json", "demo": work / "demo" / "demo.json"}[name]
        if done.exists():
            continue
        wall[name] = sh(cmd, work / f"{name}.log")
    cont = json.loads((work / "continual.json").read_text())
    init_line = next((l for l in (work / "wpc_from_ssl.log").read_text().splitlines() if l.startswith("--init")), "")
    s_ssl = json.loads((work / "wpc_from_ssl.json").read_text())
    s_scr = json.loads((work / "wpc_from_scratch.json").read_text())
    demo = json.loads((work / "demo" / "demo.json").read_text())
    res = {"commands": {k: " ".join(shlex.quote(c) for c in ["pesto"] + v[1:]) for k, v in cmds.items()},
           "wall_s": wall,
           "continual": {"accuracy": cont["accuracy"], "forgetting": cont["forgetting"], "acc": cont["acc"]},
           "init_report": init_line, "wpc_from_ssl": s_ssl, "wpc_from_scratch": s_scr,
           "export": {"compression": demo.get("compression"), "accuracy": demo.get("accuracy"),
                      "simulation": demo.get("simulation"), "end_to_end": demo.get("end_to_end")}}
    atomic_write_text(out / "accelerator.json", json.dumps(res, indent=1) + "\n")
    c, a = demo.get("compression") or {}, demo.get("accuracy") or {}
    sim, e = demo.get("simulation") or {}, demo.get("end_to_end") or {}
    md = ["# Continual SSL backbone -> WPC -> accelerator (Fashion-MNIST, ResNet-20)", "", "Commands:", "", "```"]
    md += [res["commands"][k] for k in cmds] + ["```", "",
           f"1. PTLF + SimSiam, 5 tasks x {args.steps_per_task} steps: kNN accuracy {cont['accuracy']:.2f} %, "
           f"forgetting {cont['forgetting']:.2f} points (task-incremental).",
           f"2. `pesto train --init` reports: `{init_line}`",
           "", "| WPC fine-tuning (fmnist-demo schedule, "
           f"{args.train_epochs} epochs) | test accuracy (%) | group sparsity (%) | compression |", "|---|---|---|---|"]
    for name, s in (("from the continual SSL backbone", s_ssl), ("from random initialisation", s_scr)):
        md.append(f"| {name} | {s['test_acc']:.2f} | {100 * s['group_sparsity']:.1f} | {s['compression_rate']:.1f}x |")
    md += ["", f"3. Export (`pesto demo`): {c.get('layers')} accelerated layers, artifact "
           f"{(c.get('artifact_bytes') or 0) / 1024:.1f} KiB, group sparsity {100 * (c.get('group_sparsity') or 0):.1f} %, "
           f"ideal skip speedup {c.get('speedup_ideal', 0):.2f}x; on {a.get('images')} test images float "
           f"{100 * (a.get('float') or 0):.2f} % vs integer pipeline {100 * (a.get('integer') or 0):.2f} %."]
    if sim:
        md.append(f"   RTL ({sim['simulator']}), {sim['images']} image(s): logits bit-exact vs the integer reference: "
                  f"{'yes' if sim['bit_exact_vs_reference'] else 'NO'}; {e.get('cycles_dense', 0):.0f} -> "
                  f"{e.get('cycles_skip', 0):.0f} cycles per image with group skipping ({e.get('speedup', 0):.2f}x, "
                  f"streams included) at 100 MHz.")
    atomic_write_text(out / "accelerator.md", "\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
