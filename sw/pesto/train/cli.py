"""`pesto train`: train a model in one of the modes (Chapter 2's five, Chapter 3's ast) from a recipe.

    pesto train --recipe fmnist-demo --out runs/wpc.pt
    pesto train --recipe cifar --mode naive --lambda 2e-4 --data-root ~/data/cifar-10-batches-py
    pesto train --recipe fmnist-ast --subnets 0.3,0.5,0.7 --out runs/ast.pt
    torchrun --nproc-per-node 4 -m pesto.train.cli --recipe imagenet --data-root /data/imagenet
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import ConfigError
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


def _str_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def configure(p: argparse.ArgumentParser) -> None:
    from .methods import METHODS
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = "recipes:\n" + "\n".join(
        f"  {name:13s} " + ", ".join(f"{k}={v}" for k, v in r.items()) for name, r in RECIPES.items())
    a = p.add_argument
    a("--recipe", default="fmnist-quick", help="named settings to start from (default: fmnist-quick)")
    a("--mode", choices=tuple(METHODS), help="; ".join(f"{n}: {m.summary}" for n, m in METHODS.items()))
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
    a("--sparsity-init", type=float, help="initial sparsity s_i of the schedule (default 0)")
    a("--prune-every", type=int, help="steps between two mask updates of a sub-net (delta tau)")
    a("--prune-start", type=float, help="the mask schedule starts at this fraction of the run (default 0)")
    a("--prune-end", type=float, help="... and reaches the targets at this fraction (default 0.75)")
    a("--regrow", type=float, help="initial prune-and-regrow fraction, decays to 0 by cosine (default 0.5)")
    a("--sparsity-schedule", choices=("cosine", "cubic"), help="shape of the sparsity ramp (default cosine)")


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
    out = {"model": ckpt["model"], "quant": ckpt["quant"], "epoch": ckpt["epoch"],
           **{k: last.get(k) for k in ("test_acc", "overall_sparsity", "group_sparsity",
                                       "in_group_sparsity", "compression_rate")}}
    if last.get("subnets"):   # --mode ast: the top-level figures are the sub-nets' means
        out["subnets"] = [{k: s[k] for k in ("name", "target", "test_acc", "group_sparsity", "compression_rate")}
                          for s in last["subnets"]]
    return out


def run(args: argparse.Namespace) -> int:
    from .loop import train
    cfg = config_from_args(args)
    ckpt = train(cfg)
    if ckpt:
        s = summary(ckpt)
        print(json.dumps(s, indent=1))
        if args.summary_json:
            from ..util import atomic_write_text
            atomic_write_text(args.summary_json, json.dumps(s, indent=1) + "\n")
    return 0


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
