"""`pesto continual`: self-supervised continual learning, with or without PTLF.

    pesto continual --learner simsiam --method ptlf --out runs/ptlf.pt
    pesto continual --learner barlowtwins --method lump --tasks 0,1/2,3/4,5/6,7/8,9 --buffer-size 256
    torchrun --nproc-per-node 2 -m pesto.continual.cli --method ptlf --device cpu --out runs/ptlf.pt

The checkpoint (written after every task) is a `pesto train` checkpoint of the backbone (no
classifier) plus the continual state: `pesto train --init runs/ptlf.pt` fine-tunes and compresses it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..validate import (data_folder, finite_float, nonnegative_float, output_file, positive_float, positive_int,
                        seed_int)
from .learners import LEARNERS
from .loop import METHODS, ContinualConfig


def configure(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = ("learners:\n" + "\n".join(f"  {k:12s} {v[1]}" for k, v in LEARNERS.items())
                + "\nmethods:\n" + "\n".join(f"  {k:12s} {m.help}" for k, m in METHODS.items()))
    a = p.add_argument
    a("--learner", help="simsiam or barlowtwins (default simsiam)")
    a("--method", help="finetune, lump, ascending, ptlf, multitask (default ptlf)")
    a("--model", help="backbone from the zoo: resnet20 (default), resnet18-cifar, ...")
    a("--dataset", help="fashion-mnist (default) or cifar10")
    a("--data-root", type=data_folder, help="folder holding the dataset (default: the system folder / $PESTO_DATA_ROOT)")
    a("--tasks", help="the class split, tasks separated by '/': 0,1/2,3/4,5/6,7/8,9")
    a("--n-tasks", type=positive_int, help="without --tasks: this many tasks of consecutive classes (default 5)")
    a("--epochs", type=positive_int, help="epochs per task (default 1)")
    a("--steps-per-task", type=positive_int, help="cap the optimisation steps of each task")
    a("--batch-size", type=positive_int, help="per process (default 128)")
    a("--lr", type=positive_float, help="SGD learning rate, cosine-decayed over each task (default 0.03)")
    a("--momentum", type=finite_float(0.0, 1.0, hi_open=True), help="SGD momentum in [0, 1) (default 0.9)")
    a("--weight-decay", type=nonnegative_float, help="SGD weight decay >= 0 (default 5e-4)")
    a("--proj-dim", type=positive_int, help="projector / predictor width (default 512; LUMP uses 2048)")
    a("--buffer-size", type=positive_int, help="replay buffer samples (default 256)")
    a("--mixup-alpha", type=positive_float, help="Beta(alpha, alpha) of LUMP's mixup (default 0.4)")
    a("--freeze-ratio", type=float, help="share of the layers frozen at the end of a task, in [0, 1) (default 0.4)")
    a("--freeze-ramp", type=finite_float(0.0, 1.0, lo_open=True), help="share of a task over which the frozen share rises (default 1)")
    a("--energy", type=finite_float(0.0, 1.0, lo_open=True), help="energy threshold of eq 5.7 (default 0.97)")
    a("--probe-batches", type=positive_int, help="batches of the new task for the gradient of eq 5.6 (default 1)")
    a("--train-per-task", type=positive_int, help="train on a fixed random subset of each task's images")
    a("--bank-per-task", type=positive_int, help="kNN bank / linear-probe images per task (default: all)")
    a("--test-per-task", type=positive_int, help="test images per task (default: all)")
    a("--eval", choices=("knn", "linear"), help="kNN (default) or linear evaluation")
    a("--knn-k", type=positive_int, help="kNN neighbours (default 200, LUMP's: 2 %% of a 10,000-image bank)")
    a("--seed", type=seed_int, help="random seed, 0..2^31-1 (default 0)")
    a("--out", type=output_file, help="checkpoint written after every task (default runs/continual_<learner>_<method>.pt)")
    a("--resume", action="store_true", default=None, help="continue the run in --out after its last task")
    a("--stop-after", type=positive_int, help="stop after this many tasks (continue later with --resume)")
    a("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")
    a("--threads", type=positive_int, help="torch CPU threads")
    a("--no-progress", dest="progress", action="store_false", default=None, help="no progress bars")
    a("--summary-json", type=output_file, help="also write the result (accuracy matrix, metrics, costs) to this JSON file")


def config_from_args(args: argparse.Namespace) -> ContinualConfig:
    skip = {"command", "_module", "_config", "summary_json"}
    cfg = {k: (str(v) if k in ("out", "data_root") else v) for k, v in vars(args).items()
           if k not in skip and v is not None}
    cfg.setdefault("out", f"runs/continual_{cfg.get('learner', 'simsiam')}_{cfg.get('method', 'ptlf')}.pt")
    return ContinualConfig(**cfg)


def validate(args: argparse.Namespace) -> None:
    """The whole configuration (learner, method, split, ratio, buffer vs batch, ...), checked before any
    data is read: a bad one is a usage error (exit 2)."""
    args._config = config_from_args(args)
    if args.device:
        from ..validate import check_device
        check_device(args.device)


def run(args: argparse.Namespace) -> int:
    from ..util import atomic_write_text, claim_outputs
    from .loop import run_continual
    cfg = getattr(args, "_config", None) or config_from_args(args)
    rank0 = int(os.environ.get("RANK", "0")) == 0   # under torchrun only rank 0 writes
    with claim_outputs(*((cfg.out, args.summary_json) if rank0 else ())):   # a second run on one --out is refused
        result = run_continual(cfg)
        if result:
            keys = ("accuracy", "forgetting", "completed", "acc", "totals")
            print(json.dumps({k: result.get(k) for k in keys}, indent=1))
            if args.summary_json:
                atomic_write_text(args.summary_json, json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":   # `python -m pesto.continual.cli`: what torchrun launches
    from ..cli import main
    sys.exit(main(["continual", *sys.argv[1:]]))
