"""`pesto train`: train a model in one of the five modes of Chapter 2 from a named recipe.

    pesto train --recipe fmnist-demo --out runs/wpc.pt
    pesto train --recipe cifar --mode naive --lambda 2e-4 --data-root ~/data/cifar-10-batches-py
    torchrun --nproc-per-node 4 -m pesto.train.cli --recipe imagenet --data-root /data/imagenet
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import ConfigError
from ..prune import MODES
from .recipes import RECIPES, recipe


def _cg_override(text: str) -> tuple[str, int]:
    name, sep, value = text.rpartition("=")
    if not sep or not name or not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected LAYER=CG (e.g. layer1.0.conv1=8), got {text!r}")
    return name, int(value)


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated epochs (e.g. 80,120), got {text!r}")


def classes_arg(text: str) -> list[int]:
    from ..data.datasets import parse_classes
    try:
        return parse_classes(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e))


def configure(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = "recipes:\n" + "\n".join(
        f"  {name:13s} " + ", ".join(f"{k}={v}" for k, v in r.items()) for name, r in RECIPES.items())
    a = p.add_argument
    a("--recipe", default="fmnist-quick", help="named settings to start from (default: fmnist-quick)")
    a("--mode", choices=MODES, help="fp: float; tern: ternary; prune: float + group lasso; "
                                    "naive: ternary + group lasso; wpc: ternary + weight penalty clipping")
    a("--model", help="resnet20/32/44/56, resnet18, alexnet")
    a("--dataset", help="fashion-mnist, cifar10, imagenet")
    a("--data-root", help="folder holding the dataset (default: the system folder / $PESTO_DATA_ROOT)")
    a("--epochs", type=int)
    a("--batch-size", type=int)
    a("--optimizer", choices=("sgd", "adam"))
    a("--lr", type=float, help="initial learning rate")
    a("--momentum", type=float)
    a("--weight-decay", type=float)
    a("--milestones", type=_int_list, help="epochs where the lr is multiplied by --gamma, e.g. 80,120")
    a("--gamma", type=float)
    a("--lambda", dest="lam", type=float, help="group-lasso / WPC weight lambda (eq 2.4-2.6)")
    a("--a", type=float, help="WPC threshold coefficient a (eq 2.7)")
    a("--cg", type=int, help="PE group size Cg (input channels per group)")
    a("--cg-override", action="append", type=_cg_override, metavar="LAYER=CG",
      help="per-layer Cg, repeatable")
    a("--float-first-last", dest="keep_first_last", action="store_true", default=None,
      help="keep the first and last layer in float (default)")
    a("--compress-first-last", dest="keep_first_last", action="store_false",
      help="ternarize/prune the first and last layer too")
    a("--subset", type=int, help="train on a fixed random subset of this many images")
    a("--test-subset", type=int, help="evaluate on a fixed random subset of the test split")
    a("--classes", type=classes_arg, help="train on these labels only, relabelled 0..k-1 (e.g. 0-4 or 5,7,9)")
    a("--steps-per-epoch", type=int, help="cap the optimisation steps per epoch")
    a("--augment", dest="augment", action="store_true", default=None, help="random crop + flip")
    a("--no-augment", dest="augment", action="store_false")
    a("--workers", type=int, help="data loader processes")
    a("--seed", type=int)
    a("--out", help="checkpoint path, written after every epoch (default: runs/<mode>.pt)")
    a("--resume", action="store_true", default=None, help="continue the run in --out where it stopped")
    a("--init", help="start from the weights of this checkpoint (e.g. a float model)")
    a("--plots", help="folder for the figures (sparsity over epochs, kernels, histogram)")
    a("--threads", type=int, help="torch CPU threads (default: torch's choice; 1 on a busy machine)")
    a("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")
    a("--no-progress", dest="progress", action="store_false", default=None, help="no progress bar")
    a("--summary-json", help="also write the final metrics to this JSON file")


def config_from_args(args: argparse.Namespace):
    from .loop import TrainConfig
    cfg = recipe(args.recipe)
    skip = {"recipe", "command", "_module", "cg_override", "summary_json"}
    for k, v in vars(args).items():
        if k not in skip and v is not None:
            cfg[k] = v
    if args.cg_override:
        cfg["cg_overrides"] = dict(args.cg_override)
    cfg.setdefault("mode", "wpc")
    cfg.setdefault("out", f"runs/{cfg['model']}_{cfg['dataset']}_{cfg['mode']}.pt")
    return TrainConfig.from_dict(cfg)


def summary(ckpt: dict) -> dict:
    last = ckpt["history"][-1] if ckpt.get("history") else {}
    return {"model": ckpt["model"], "quant": ckpt["quant"], "epoch": ckpt["epoch"],
            **{k: last.get(k) for k in ("test_acc", "overall_sparsity", "group_sparsity",
                                        "in_group_sparsity", "compression_rate")}}


def run(args: argparse.Namespace) -> int:
    from .loop import train
    cfg = config_from_args(args)
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
    """Entry point for `python -m pesto.train.cli` (what torchrun launches)."""
    from ..errors import PestoError
    p = argparse.ArgumentParser(prog="pesto train")
    configure(p)
    try:
        return run(p.parse_args(argv))
    except PestoError as e:
        print(f"pesto train: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
