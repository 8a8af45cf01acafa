"""`pesto transfer BACKBONE --data ... --out ...`: adapt a trained backbone to a new task.

    pesto transfer runs/backbone.pt --data fashion-mnist --classes 5-9 --out runs/fm59.pt
    pesto transfer runs/backbone.pt --data digits --method last --out runs/digits_last.pt
    pesto export-to-fpga runs/fm59.pt -o fm59.pesto      # backbone layers byte-identical to its own artifact

Methods: repnet (default; designs none | down | up | dual | dual-all), last, full, bias-bn,
input-reprogram. Progress and results as `pesto train`: a bar per epoch, a line per epoch, the
checkpoint after every epoch (--resume continues it), a JSON summary.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from ..train.cli import classes_arg, print_summary
from ..validate import (data_folder, existing_file, finite_float, nonnegative_float, nonnegative_int, output_file,
                        positive_float, positive_int, seed_int)
from .model import DESIGNS, METHODS

REQUIRES = ("torch",)   # checked by pesto.cli before the command runs (the `train` extra)


def configure(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = ("methods:\n" + "\n".join(f"  {k:16s} {v.help}" for k, v in METHODS.items())
                + "\ndesigns (table 17, method repnet):\n" + "\n".join(f"  {k:16s} ({v.letter}) {v.help}"
                                                                      for k, v in DESIGNS.items()))
    a = p.add_argument
    a("backbone", type=existing_file, help="the backbone: a `pesto train` checkpoint (ternary, e.g. WPC)")
    a("--data", required=True, help="the new task's dataset: fashion-mnist, cifar10, digits, imagenet")
    a("--data-root", type=data_folder, help="folder holding the dataset (default: the system folder / $PESTO_DATA_ROOT)")
    a("--classes", type=classes_arg, help="the new task's labels, relabelled 0..k-1 (e.g. 5-9)")
    a("--resize", action="store_true", default=None, help="resize the images to the backbone's input (bilinear)")
    a("--out", required=True, type=output_file, help="transfer checkpoint, written after every epoch")
    a("--method", help=f"what trains: {', '.join(METHODS)} (default repnet)")
    a("--design", help=f"Rep-Net connection design: {', '.join(DESIGNS)} (default dual)")
    a("--width", type=finite_float(0.0, 4.0, lo_open=True), help="Rep-Net mid channels as a fraction of the connector's channels (default 0.5)")
    a("--epochs", type=positive_int)
    a("--batch-size", type=positive_int)
    a("--optimizer", choices=("sgd", "adam"))
    a("--lr", type=positive_float, help="initial learning rate (cosine decay to 0; default 5e-3)")
    a("--weight-decay", type=nonnegative_float)
    a("--subset", type=positive_int, help="train on a fixed random subset of this many images")
    a("--test-subset", type=positive_int, help="evaluate on a fixed random subset of the test split")
    a("--steps-per-epoch", type=positive_int, help="cap the optimisation steps per epoch")
    a("--augment", dest="augment", action="store_true", default=None, help="random crop + flip")
    a("--workers", type=nonnegative_int, help="data loader processes")
    a("--seed", type=seed_int, help="random seed, 0..2^31-1")
    a("--resume", action="store_true", default=None, help="continue the run in --out where it stopped")
    a("--no-memory", dest="measure_memory", action="store_false", default=None,
      help="skip measuring one training step's memory")
    a("--backbone-artifact", type=existing_file, help="the backbone's artifact (.pesto) the connector formats come from "
                                  "(default: export the backbone with the options below)")
    a("--calib-data", help="calibration images of the backbone export: fashion-mnist or a .npy (default fashion-mnist)")
    a("--calib-images", type=positive_int, help="number of calibration images (default 256)")
    a("--cg", type=positive_int, help="backbone export: PE-group size (default: as trained)")
    a("--act-bits", type=positive_int, help="backbone export: significant activation bits (default 16)")
    a("--frac-bits", type=int, help="backbone export: one fixed fraction-bit count")
    a("--headroom-bits", type=nonnegative_int, help="backbone export: range above the calibration maximum (default 1)")
    a("--threads", type=positive_int, help="torch CPU threads (1 is fastest on a busy machine)")
    a("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")
    a("--no-progress", dest="progress", action="store_false", default=None, help="no progress bar")
    a("--summary-json", type=output_file, help="also write the final metrics to this JSON file")


def config_from_args(args: argparse.Namespace):
    from .loop import TransferConfig
    skip = {"command", "_module", "summary_json", "_config"}
    cfg = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k not in skip and v is not None}
    return TransferConfig.from_dict(cfg)


def validate(args: argparse.Namespace) -> None:
    """The whole transfer configuration, checked before any data is read (usage errors, exit 2)."""
    args._config = config_from_args(args)


def run(args: argparse.Namespace) -> int:
    from ..util import claim_output
    from .loop import summary, transfer
    cfg = getattr(args, "_config", None) or config_from_args(args)
    with contextlib.ExitStack() as claims:
        for path in (cfg.out, args.summary_json):
            if path:
                claims.enter_context(claim_output(path))   # a second run on the same --out is refused
        ckpt = transfer(cfg)
        if ckpt:
            print_summary(summary(ckpt), args.summary_json)
    return 0


def export_run(args) -> int:
    """`pesto export-to-fpga TRANSFER.pt -o OUT`: the transferred network's artifact."""
    import time
    from .. import artifact as art
    from ..data import load_splits
    from .checkpoint import load_transfer
    from .deploy import export_transferred
    t0 = time.perf_counter()
    t = load_transfer(args.checkpoint)
    images = None
    if not args.no_verify and t["task"]["dataset"] in ("fashion-mnist", "digits"):
        from ..data import select_classes
        _, test = load_splits(t["task"]["dataset"], augment=False, input_size=t["task"]["input_shape"][-1])
        test = select_classes(test, t["task"].get("classes"))
        if tuple(test.images.shape[1:]) == tuple(t["task"]["input_shape"]):
            images = test.images[:32].numpy()
    out = export_transferred(t, backbone=args.backbone, artifact=args.backbone_artifact, verify_images=images)
    path = art.save(out, args.output)
    tr = out.meta["transfer"]
    print(out.describe())
    host = [n.name for n in out.nodes if n.name.startswith(("rep", "conn", "classifier"))]
    print(f"\n{tr['method']} ({tr['design']}): {len(tr['connectors'])} connectors at "
          f"{', '.join(c['node'] for c in tr['connectors'])}; {tr['host_parameters']:,} host parameters in "
          f"{len(host)} new host nodes; the {len(out.layers)} accelerated layers are the backbone's, byte for byte")
    v = out.meta["export"].get("verification")
    if v:
        print(f"check on {v['images']} test images: integer vs torch top-1 agreement {v['top1_agreement']:.1f} %, "
              f"max |logit error| {v['max_abs_logit_error']:.4g}")
    print(f"wrote {path} ({path.stat().st_size:,} bytes) in {time.perf_counter() - t0:.1f} s")
    return 0
