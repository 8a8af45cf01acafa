"""`pesto export-to-fpga CHECKPOINT -o OUT`: export a model to the accelerator artifact.

CHECKPOINT is a checkpoint written by `pesto train`, or a plain PyTorch state dict together
with --arch (ternarized on the spot, with a warning), or the word `random` with --arch (a
freshly initialised network: useful for size and timing studies only).

A checkpoint with sub-nets (`pesto train --mode ast`) gives one artifact holding all of them
(docs/subnets.md) and one per-layer table per sub-net; --subnet NAME exports one of them alone.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, ConfigError


def configure(p) -> None:
    p.add_argument("checkpoint", help="`pesto train` checkpoint, plain state dict (with --arch) or `random` (with --arch)")
    p.add_argument("-o", "--output", required=True, help="artifact file to write (e.g. resnet20.pesto)")
    p.add_argument("--cg", type=int, default=None,
                   help="PE-group size Cg for every accelerated layer (default: the Cg each layer was trained with)")
    p.add_argument("--act-bits", type=int, default=16,
                   help="significant bits an activation's calibrated range may use in its int16 container (default 16)")
    p.add_argument("--frac-bits", type=int, default=None,
                   help="one fixed fraction-bit count for every int16 tensor instead of calibrated ones")
    p.add_argument("--headroom-bits", type=int, default=1,
                   help="range kept above the calibration maximum, in bits (default 1)")
    p.add_argument("--calib-data", default="fashion-mnist",
                   help="calibration images: `fashion-mnist` (training set) or a .npy of (N, C, H, W) "
                        "uint8 or float in [0, 1] (default fashion-mnist)")
    p.add_argument("--calib-images", type=int, default=256, help="number of calibration images (default 256)")
    p.add_argument("--arch", default=None, help="architecture of a plain state dict / `random` (see pesto.models)")
    p.add_argument("--in-channels", type=int, default=1, help="with --arch: input channels (default 1)")
    p.add_argument("--num-classes", type=int, default=10, help="with --arch: classes (default 10)")
    p.add_argument("--input-size", type=int, default=28, help="with --arch: input height = width (default 28)")
    p.add_argument("--mean", type=float, nargs="+", default=None, help="input normalisation mean per channel")
    p.add_argument("--std", type=float, nargs="+", default=None, help="input normalisation std per channel")
    p.add_argument("--onnx", default=None, metavar="PATH", help="also write the compressed float model as ONNX "
                   "and check it in onnxruntime")
    p.add_argument("--stats-json", default=None, metavar="PATH", help="write the per-layer table as JSON")
    p.add_argument("--no-verify", action="store_true", help="skip the integer-vs-float check on calibration images")
    p.add_argument("--subnet", default=None, metavar="NAME",
                   help="a checkpoint with sub-nets: export only this one (index or name) as a plain artifact")
    p.add_argument("--accuracy-images", type=int, default=0, metavar="N",
                   help="measure each sub-net's top-1 accuracy with the integer reference on the first N "
                        "Fashion-MNIST test images and record it in the artifact (default 0: keep the "
                        "accuracy the checkpoint measured)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def load_source(args):
    """The model (or checkpoint dict) to export, from the command line's CHECKPOINT and --arch."""
    import torch
    from ..models import build_model
    if args.checkpoint == "random":
        if not args.arch:
            raise ConfigError("`random` needs --arch NAME (e.g. --arch resnet18)")
        return build_model(args.arch, in_channels=args.in_channels, num_classes=args.num_classes,
                           input_size=args.input_size)
    path = Path(args.checkpoint)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path} is corrupt or not a PyTorch file (loaded with weights_only=True): "
                              f"{str(e).splitlines()[0][:200] if str(e) else type(e).__name__}") from e
    if isinstance(obj, dict) and obj.get("format") == "pesto-checkpoint":
        if args.arch and args.arch != obj["model"]["name"]:
            raise CheckpointError(f"{path} holds a {obj['model']['name']}, not the --arch {args.arch}")
        return str(path)   # export_model loads and validates it (checksum, architecture)
    if not args.arch:
        raise CheckpointError(f"{path} is not a `pesto train` checkpoint; for a plain state dict give --arch NAME")
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} holds no state dict of tensors")
    model = build_model(args.arch, in_channels=args.in_channels, num_classes=args.num_classes,
                        input_size=args.input_size)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{path} is not a {args.arch} state dict: {str(e).splitlines()[0]}"
                              f"{' ...' if len(str(e).splitlines()) > 1 else ''}") from e
    return model


def load_calibration(spec: str, n: int):
    if spec in ("fashion-mnist", "fmnist"):
        return None   # export_model's default: Fashion-MNIST training images
    path = Path(spec)
    if path.suffix != ".npy" or not path.is_file():
        raise ConfigError(f"--calib-data {spec!r}: give `fashion-mnist` or an existing .npy file")
    x = np.load(path, allow_pickle=False)
    return x[:n]


def run(args) -> int:
    from .. import artifact as art
    from .exporter import export_model, load_model
    t0 = time.perf_counter()
    if args.cg is not None:
        from ..geometry import check_cg
        check_cg(args.cg, None, "--cg")
    source = load_model(load_source(args), args.cg)
    subnet = args.subnet
    if subnet is not None and subnet.isdigit():
        subnet = int(subnet)
    artifact = export_model(source, load_calibration(args.calib_data, args.calib_images), cg=args.cg,
                            act_bits=args.act_bits, frac_bits=args.frac_bits, headroom_bits=args.headroom_bits,
                            mean=args.mean, std=args.std, num_calibration=args.calib_images,
                            verify=0 if args.no_verify else 32, progress=not args.quiet, subnet=subnet)
    if args.accuracy_images:
        measure_accuracy(artifact, args.accuracy_images, progress=not args.quiet)
    out = art.save(artifact, args.output)
    size = out.stat().st_size
    print(artifact.describe())
    print(f"\nhost layers (float): {', '.join(n.name for n in artifact.host_nodes) or 'none'}")
    if artifact.meta["export"]["host_fallback"]:
        print(f"ternary layers kept on the host: {', '.join(artifact.meta['export']['host_fallback'])}")
    views = [artifact.subnet(k) for k in range(artifact.num_subnets)]
    for k, view in enumerate(views):
        total = view.totals()
        ideal = total["weights"] * 32 / total["compression"] / 8 if total["weights"] else 0
        label = f"sub-net {k} {view.subnet_names[0]!r}: " if artifact.subnets else ""
        print(f"{label}ternary weights: {total['weights'] * 4:,} B as float32 -> codes {total['code_bytes']:,} B + "
              f"indexers {total['indexer_bytes']:,} B (eq 2.8: {art.fmt_rate(total['compression'])}x = {ideal:,.0f} B)")
        sub = view.meta.get("subnet", {}).get("meta", {})
        v = sub.get("verification") or (artifact.meta["export"].get("verification") if not artifact.subnets else None)
        if v:
            print(f"  check on {v['images']} calibration images: integer vs float top-1 agreement "
                  f"{100 * v['top1_agreement']:.1f}%, max |logit error| {v['max_abs_logit_error']:.4g}")
        acc = sub.get("accuracy")
        if acc:
            print(f"  accuracy {acc['top1_percent']:.2f}% on {acc['images']} {acc['split']} images "
                  f"(measured by {acc['measured_by']})")
    if artifact.subnets:
        stored = artifact.storage_stats()
        t = art.totals(stored)
        print(f"stored once for all {artifact.num_subnets} sub-nets: codes of {t['nnz_groups']:,} groups "
              f"({t['code_bytes']:,} B) + storage map {t['indexer_bytes']:,} B, plus one issue map and output "
              f"stage per sub-net")
    if args.onnx:
        from .onnx import check_onnx, export_onnx
        from ..prune.subnets import extract_subnet, is_subnet_model
        from ..reference.network import normalize
        model, _ = source
        if is_subnet_model(model):
            if subnet is None:
                raise ConfigError("--onnx writes one network: with sub-nets, choose one with --subnet NAME")
            model = extract_subnet(model, subnet).eval()
        shape = tuple(artifact.input_shape)
        export_onnx(model, args.onnx, shape)
        images = np.random.default_rng(0).random((8, *shape), dtype=np.float32)
        r = check_onnx(args.onnx, model, normalize(artifact, images))
        print(f"ONNX: {args.onnx} (onnxruntime vs PyTorch max |error| {r['max_abs_error']:.2g}, "
              f"{'within' if r['within_tolerance'] else 'OUTSIDE'} atol {r['atol']:g} + rtol {r['rtol']:g})")
    if args.stats_json:
        from ..util import atomic_write_text
        if artifact.subnets:
            doc = {"subnets": [{"name": v.subnet_names[0], "meta": v.meta["subnet"]["meta"],
                                "layers": v.layer_stats(), "totals": v.totals()} for v in views],
                   "stored": {"layers": artifact.storage_stats(), "totals": art.totals(artifact.storage_stats())},
                   "artifact_bytes": size}
        else:
            doc = {"layers": artifact.layer_stats(), "totals": artifact.totals(), "artifact_bytes": size}
        atomic_write_text(args.stats_json, json.dumps(doc, indent=1, default=str))
    print(f"wrote {out} ({size:,} bytes) in {time.perf_counter() - t0:.1f} s")
    return 0


def measure_accuracy(artifact, n: int, progress: bool = False) -> None:
    """Each sub-net's top-1 accuracy by the integer reference on the first n Fashion-MNIST test
    images, recorded in its meta (``accuracy``, docs/subnets.md) or, K = 1, in meta["accuracy"]."""
    from ..data import load_splits
    from ..reference import run
    if tuple(artifact.input_shape) != (1, 28, 28):
        raise ConfigError(f"--accuracy-images measures on Fashion-MNIST; this model takes {artifact.input_shape}")
    _, test = load_splits("fashion-mnist", augment=False)
    n = min(n, len(test))
    x, y = test.images[:n].numpy(), test.labels[:n].numpy()
    for k in range(artifact.num_subnets):
        view = artifact.subnet(k)
        correct = 0
        for i in range(0, n, 250):
            logits = run(view, x[i:i + 250])
            correct += int((logits.argmax(1) == y[i:i + 250]).sum())
        acc = {"top1_percent": 100.0 * correct / n, "images": n, "split": "test",
               "measured_by": "pesto.reference (integer pipeline)"}
        if artifact.subnets:
            artifact.subnets[k].meta["accuracy"] = acc
            artifact._views.pop(k, None)
        else:
            artifact.meta["accuracy"] = acc
        if progress:
            print(f"{view.subnet_names[0]}: {acc['top1_percent']:.2f}% on {n} test images (integer reference)")
