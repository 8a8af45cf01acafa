"""`pesto train`: train a model in one of the modes (Chapter 2's five, Chapter 3's ast) from a recipe.

    pesto train --recipe fmnist-demo --out runs/wpc.pt
    pesto train --recipe cifar --mode naive --lambda 2e-4 --data-root ~/data/cifar-10-batches-py
    pesto train --recipe fmnist-ast --subnets 0.3,0.5,0.7 --out runs/ast.pt
    torchrun --nproc-per-node 4 -m pesto.train.cli --recipe imagenet --data-root /data/imagenet
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..validate import (data_folder, existing_file, finite_float, nonnegative_float, nonnegative_int, output_file,
                        output_folder, positive_float, positive_int, seed_int)
from .recipes import RECIPES, recipe

REQUIRES = ("torch",)   # checked by pesto.cli before the command runs (the `train` extra)


def _cg_override(text: str) -> tuple[str, int]:
    name, sep, value = text.rpartition("=")
    if not sep or not name or not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected LAYER=CG with CG >= 1 (e.g. layer1.0.conv1=8), got {text!r}")
    return name, int(value)


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated epochs (e.g. 80,120), got {text!r}") from None
    if any(v < 1 for v in values) or any(b <= a for a, b in zip(values, values[1:])):
        raise argparse.ArgumentTypeError(f"expected increasing epochs >= 1 (e.g. 80,120), got {text!r}")
    return values


def classes_arg(text: str) -> list[int]:
    from ..data.datasets import parse_classes
    from ..errors import ConfigError
    try:
        return parse_classes(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _str_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _model_spec(value: str) -> str:
    """A zoo model name, or package.module:factory (imported when the run builds it)."""
    from ..models import MODELS
    if value in MODELS or (":" in value and all(value.partition(":")[::2])):
        return value
    raise argparse.ArgumentTypeError(f"{value!r}: choose one of {', '.join(MODELS)} or give package.module:factory")


def configure(p: argparse.ArgumentParser) -> None:
    from ..data.datasets import DATASETS
    from ..models import MODELS
    from .methods import METHODS
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = "recipes:\n" + "\n".join(
        f"  {name:13s} " + ", ".join(f"{k}={v}" for k, v in r.items()) for name, r in RECIPES.items())
    a = p.add_argument
    a("--recipe", default="fmnist-quick", choices=RECIPES, metavar="RECIPE",
      help=f"named settings to start from: {', '.join(RECIPES)} (default: fmnist-quick)")
    a("--mode", choices=tuple(METHODS), help="; ".join(f"{n}: {m.summary}" for n, m in METHODS.items()))
    a("--model", type=_model_spec, metavar="MODEL",
      help=f"{', '.join(MODELS)}, or your own package.module:factory (a function returning an nn.Module; "
           f"docs/training.md)")
    a("--dataset", choices=DATASETS, metavar="DATASET", help=", ".join(DATASETS))
    a("--data-root", type=data_folder,
      help="folder holding the dataset; only this folder is searched (default: $PESTO_DATA_ROOT, else the "
           "system folder)")
    a("--epochs", type=positive_int)
    a("--batch-size", type=positive_int)
    a("--optimizer", choices=("sgd", "adam"))
    a("--lr", type=positive_float, help="initial learning rate (> 0)")
    a("--momentum", type=finite_float(0.0, 1.0, hi_open=True), help="SGD momentum in [0, 1)")
    a("--weight-decay", type=nonnegative_float)
    a("--milestones", type=_int_list, help="increasing epochs where the lr is multiplied by --gamma, e.g. 80,120")
    a("--gamma", type=finite_float(0.0, 1.0, lo_open=True), help="lr factor at each milestone, in (0, 1]")
    a("--lambda", dest="lam", type=nonnegative_float, help="group-lasso / WPC weight lambda >= 0 (eq 2.4-2.6)")
    a("--a", type=positive_float, help="WPC threshold coefficient a > 0 (eq 2.7)")
    a("--cg", type=positive_int, help="PE group size Cg (input channels per group)")
    a("--cg-override", action="append", type=_cg_override, metavar="LAYER=CG",
      help="per-layer Cg, repeatable")
    a("--float-first-last", dest="keep_first_last", action="store_true", default=None,
      help="keep the first and last layer in float (default)")
    a("--compress-first-last", dest="keep_first_last", action="store_false",
      help="ternarize/prune the first and last layer too")
    a("--subset", type=positive_int, help="train on a fixed random subset of this many images (at least one batch)")
    a("--test-subset", type=positive_int, help="evaluate on a fixed random subset of the test split")
    a("--classes", type=classes_arg, help="train on these labels only, relabelled 0..k-1 (e.g. 0-4 or 5,7,9)")
    a("--steps-per-epoch", type=positive_int,
      help="cap the optimisation steps per epoch (>= 1; omit it for whole epochs)")
    a("--augment", dest="augment", action="store_true", default=None, help="random crop + flip")
    a("--no-augment", dest="augment", action="store_false")
    a("--workers", type=nonnegative_int, help="data loader processes (0: load in the main process)")
    a("--seed", type=seed_int, help="random seed, 0..2^31-1")
    a("--out", type=output_file, help="checkpoint path, written after every epoch (default: runs/<mode>.pt)")
    a("--resume", action="store_true", default=None,
      help="continue the run in --out where it stopped (a missing --out starts the run)")
    a("--init", type=existing_file, help="start from the weights of this checkpoint (e.g. a float model)")
    a("--plots", type=output_folder, help="folder for the figures (sparsity over epochs, kernels, histogram)")
    a("--threads", type=positive_int, help="torch CPU threads (default: torch's choice; 1 on a busy machine)")
    a("--device", help="cpu, cuda, cuda:1 (default: cuda if available); refused if this machine lacks it")
    a("--no-progress", dest="progress", action="store_false", default=None, help="no progress bar")
    a("--summary-json", type=output_file, help="also write the final metrics to this JSON file")
    g = p.add_argument_group("--mode ast (Chapter 3: sub-nets sharing one set of ternary codes)")
    a = g.add_argument
    a("--subnets", type=_str_list, metavar="T1,T2,...",
      help="one target per sub-net: group sparsities in [0, 1) (e.g. 0.3,0.5,0.7), or N:M with --pattern nm*")
    a("--scheme", help="nd: non-disjoint, each sub-net prunes and regrows (default); cs: completely subset")
    a("--gc", dest="gc", action="store_true", default=None, help="gradient correction, eq 3.4 (default)")
    a("--no-gc", dest="gc", action="store_false", help="alternating sparse training without correction")
    a("--pattern", help="group: any PE groups (default); nm: N of every M PE groups of a channel; "
                        "nm-element: N of every M weights along the input channels (GPU N:M)")
    a("--joint", action="store_true", default=None, help="joint training (eq 3.3): every sub-net every step")
    a("--sparsity-init", type=finite_float(0.0, 1.0, hi_open=True), help="initial sparsity s_i of the schedule (default 0)")
    a("--prune-every", type=positive_int, help="steps between two mask updates of a sub-net (delta tau)")
    a("--prune-start", type=finite_float(0.0, 1.0), help="the mask schedule starts at this fraction of the run (default 0)")
    a("--prune-end", type=finite_float(0.0, 1.0), help="... and reaches the targets at this fraction (default 0.75)")
    a("--regrow", type=finite_float(0.0, 1.0), help="initial prune-and-regrow fraction, decays to 0 by cosine (default 0.5)")
    a("--sparsity-schedule", choices=("cosine", "cubic"), help="shape of the sparsity ramp (default cosine)")


def config_from_args(args: argparse.Namespace):
    from .loop import TrainConfig
    cfg = recipe(args.recipe)
    skip = {"recipe", "command", "_module", "cg_override", "summary_json", "_config"}
    for k, v in vars(args).items():
        if k not in skip and v is not None:
            cfg[k] = str(v) if isinstance(v, Path) else v
    if args.cg_override:
        cfg["cg_overrides"] = dict(args.cg_override)
    cfg.setdefault("mode", "wpc")
    cfg.setdefault("out", f"runs/{cfg['model']}_{cfg['dataset']}_{cfg['mode']}.pt")
    return TrainConfig.from_dict(cfg)


def validate(args: argparse.Namespace) -> None:
    """The whole training configuration, checked before any data is read (usage errors, exit 2)."""
    args._config = config_from_args(args)


def summary(ckpt: dict) -> dict:
    last = ckpt["history"][-1] if ckpt.get("history") else {}
    out = {"model": ckpt["model"], "quant": ckpt["quant"], "epoch": ckpt["epoch"],
           **{k: last.get(k) for k in ("test_acc", "overall_sparsity", "group_sparsity",
                                       "in_group_sparsity", "compression_rate")}}
    if last.get("subnets"):   # --mode ast: the top-level figures are the sub-nets' means
        out["subnets"] = [{k: s[k] for k in ("name", "target", "test_acc", "group_sparsity", "compression_rate")}
                          for s in last["subnets"]]
    return out


def run(args: argparse.Namespace) -> int:
    from ..util import claim_outputs
    from .loop import train
    cfg = getattr(args, "_config", None) or config_from_args(args)
    rank0 = int(os.environ.get("RANK", "0")) == 0   # under torchrun only rank 0 writes
    with claim_outputs(*((cfg.out, args.summary_json) if rank0 else ())):   # a second run on one --out is refused
        ckpt = train(cfg)
        if ckpt:
            print_summary(summary(ckpt), args.summary_json)
    return 0


def print_summary(s: dict, path: str | None) -> None:
    """Print a run's summary as JSON, and write it to ``path`` (atomically) when given."""
    print(json.dumps(s, indent=1))
    if path:
        from ..util import atomic_write_text
        atomic_write_text(path, json.dumps(s, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Entry point for `python -m pesto.train.cli` (what torchrun launches); exit codes as `pesto`'s."""
    from ..cli import main as pesto_main
    return pesto_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
