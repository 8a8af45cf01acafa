"""`pesto export-to-fpga CHECKPOINT -o OUT`: export a model to the accelerator artifact.

CHECKPOINT is a checkpoint written by `pesto train`, or a plain PyTorch state dict together
with --arch (ternarized on the spot, with a warning), or the word `random` with --arch (a
freshly initialised network: useful for size and timing studies only).
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, ConfigError, DatasetError, ExportError, UsageError
from ..validate import existing_file, finite_float, int_range, output_file, positive_float, positive_int

REQUIRES = ("torch",)   # checked by pesto.cli before the command runs (the `train` extra)


def configure(p) -> None:
    from ..numerics import ACT_BITS, FRAC_MAX, FRAC_MIN
    from .exporter import DEFAULT_MIN_AGREEMENT, DEFAULT_VERIFY
    p.add_argument("checkpoint", help="`pesto train` checkpoint, plain state dict (with --arch) or `random` (with --arch)")
    p.add_argument("-o", "--output", required=True, type=output_file,
                   help="artifact file to write (e.g. resnet20.pesto); an existing one is kept if the export fails")
    p.add_argument("--cg", type=positive_int, default=None,
                   help="PE-group size Cg for every accelerated layer (default: the Cg each layer was trained with)")
    p.add_argument("--act-bits", type=int_range(1, ACT_BITS), default=16,
                   help="significant bits an activation's calibrated range may use in its int16 container (1..16, default 16)")
    p.add_argument("--frac-bits", type=int_range(FRAC_MIN, FRAC_MAX), default=None,
                   help=f"one fixed fraction-bit count ({FRAC_MIN}..{FRAC_MAX}) for every int16 tensor instead of calibrated ones")
    p.add_argument("--headroom-bits", type=int_range(0, ACT_BITS - 1), default=1,
                   help="range kept above the calibration maximum, in bits (0..15, default 1)")
    p.add_argument("--calib-data", default="fashion-mnist",
                   help="calibration images: `fashion-mnist` (training set) or a .npy of (N, C, H, W) "
                        "uint8 pixels (other integer types holding 0..255 alike) or floats in [0, 1] (default fashion-mnist)")
    p.add_argument("--calib-images", type=positive_int, default=256,
                   help="number of calibration images, at least 1 (default 256; fewer if the data holds fewer)")
    p.add_argument("--arch", default=None, help="architecture of a plain state dict / `random` (see pesto.models)")
    p.add_argument("--in-channels", type=positive_int, default=1, help="with --arch: input channels (default 1)")
    p.add_argument("--num-classes", type=positive_int, default=10, help="with --arch: classes (default 10)")
    p.add_argument("--input-size", type=positive_int, default=28, help="with --arch: input height = width (default 28)")
    p.add_argument("--mean", type=finite_float(), nargs="+", default=None,
                   help="input normalisation mean per channel (default: the checkpoint's)")
    p.add_argument("--std", type=positive_float, nargs="+", default=None,
                   help="input normalisation std per channel, > 0 (default: the checkpoint's)")
    p.add_argument("--normalisation", choices=("none",), default=None,
                   help="`none`: the model takes pixel / 255 as it is (for a plain state dict or `random` "
                        "without --mean/--std; a checkpoint carries its own)")
    p.add_argument("--onnx", default=None, metavar="PATH", type=output_file,
                   help="also write the compressed float model as ONNX and check it in onnxruntime")
    p.add_argument("--qonnx", default=None, metavar="PATH", type=output_file,
                   help="also write the integer pipeline as a QONNX model (Quant nodes for the ternary weights "
                        "and int16 activations; docs/interop.md)")
    p.add_argument("--stats-json", default=None, metavar="PATH", type=output_file,
                   help="write the per-layer table as JSON")
    p.add_argument("--verify-images", type=positive_int, default=DEFAULT_VERIFY,
                   help=f"calibration images the integer pipeline is checked on against the float model "
                        f"(default {DEFAULT_VERIFY})")
    p.add_argument("--min-agreement", type=finite_float(0.0, 100.0), default=DEFAULT_MIN_AGREEMENT,
                   help=f"top-1 agreement in percent (0..100) of that check below which the export fails, exit 1, and nothing "
                        f"is written (default {DEFAULT_MIN_AGREEMENT})")
    p.add_argument("--no-verify", action="store_true", help="skip the integer-vs-float check (and its threshold)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("--backbone", type=existing_file, default=None, help="with a `pesto transfer` checkpoint: its backbone checkpoint, "
                   "if it moved since training")
    p.add_argument("--backbone-artifact", type=existing_file, default=None, help="with a `pesto transfer` checkpoint: the backbone's "
                   "own artifact, whose accelerated layers the transferred artifact keeps byte for byte")


def validate(args) -> None:
    """Command-line checks before anything is loaded (usage errors, exit 2)."""
    from ..models import MODELS
    if args.checkpoint == "random":
        if not args.arch:
            raise UsageError("`random` needs --arch NAME (e.g. --arch resnet18)")
    else:
        path = Path(args.checkpoint)
        if not path.is_file():
            raise UsageError(f"checkpoint {path} does not exist" if not path.exists() else
                             f"checkpoint {path} is not a regular file")
    if args.arch is not None and args.arch not in MODELS:
        raise UsageError(f"--arch {args.arch!r}: unknown; available: {', '.join(MODELS)}")
    if (args.mean is None) != (args.std is None):
        raise UsageError("give --mean and --std together (one value per input channel, or one for all)")
    if args.mean is not None and len(args.mean) != len(args.std):
        raise UsageError(f"--mean has {len(args.mean)} values, --std {len(args.std)}: give one per channel each")
    if args.normalisation and args.mean is not None:
        raise UsageError("give either --mean/--std or --normalisation none, not both")
    if args.calib_data not in ("fashion-mnist", "fmnist"):
        path = Path(args.calib_data)
        if path.suffix != ".npy" or not path.is_file():
            raise UsageError(f"--calib-data {args.calib_data!r}: give `fashion-mnist` or an existing .npy file")
    outputs = [Path(p).resolve() for p in (args.output, args.onnx, args.qonnx, args.stats_json) if p is not None]
    if len(set(outputs)) != len(outputs):
        raise UsageError("-o, --onnx, --qonnx and --stats-json must be different files")


def load_source(args):
    """The model (or checkpoint dict) to export, from the command line's CHECKPOINT and --arch."""
    import torch
    from ..models import build_model
    from ..train.checkpoint import torch_load
    if args.checkpoint == "random":
        if not args.arch:
            raise ConfigError("`random` needs --arch NAME (e.g. --arch resnet18)")
        return build_model(args.arch, in_channels=args.in_channels, num_classes=args.num_classes,
                           input_size=args.input_size)
    path = Path(args.checkpoint)
    obj = torch_load(path)
    if isinstance(obj, dict) and obj.get("format") == "pesto-checkpoint":
        name = (obj.get("model") or {}).get("name") if isinstance(obj.get("model"), dict) else None
        if args.arch and args.arch != name:
            raise CheckpointError(f"{path} holds a {name}, not the --arch {args.arch}")
        return str(path)   # export_model loads and validates it (fields, checksum, architecture)
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
    try:
        x = np.load(path, allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError, EOFError) as e:
        raise DatasetError(f"--calib-data {path}: not a readable .npy array of images ({e}); save one with "
                           f"numpy.save(path, images) from a uint8 (N, C, H, W) array") from None
    if x.ndim not in (3, 4) or len(x) == 0:
        raise DatasetError(f"--calib-data {path}: expected (N, C, H, W) or (N, H, W) images, got shape {x.shape}")
    return np.array(x[:n])


def run(args) -> int:
    from ..util import claim_output
    with contextlib.ExitStack() as claims:
        for path in (args.output, args.onnx, args.qonnx, args.stats_json):
            if path is not None:
                claims.enter_context(claim_output(path))   # a second export to the same files is refused
        return _export(args)


def _export(args) -> int:
    from .. import artifact as art
    from .exporter import export_model, load_model
    from ..transfer.checkpoint import is_transfer_file
    if args.checkpoint != "random" and is_transfer_file(args.checkpoint):
        from ..transfer.cli import export_run
        return export_run(args)   # a Rep-Net grafted onto the backbone's artifact
    t0 = time.perf_counter()
    source = load_model(load_source(args), args.cg)
    artifact = export_model(source, load_calibration(args.calib_data, args.calib_images), cg=args.cg,
                            act_bits=args.act_bits, frac_bits=args.frac_bits, headroom_bits=args.headroom_bits,
                            mean=args.mean, std=args.std, normalisation=args.normalisation,
                            num_calibration=args.calib_images,
                            verify=0 if args.no_verify else args.verify_images, min_agreement=args.min_agreement,
                            progress=not args.quiet)
    if args.onnx:   # before the artifact is written: an export that fails a check writes nothing
        from .onnx import check_onnx, export_onnx
        from ..reference.network import normalize
        model, _ = source
        shape = tuple(artifact.input_shape)
        export_onnx(model, args.onnx, shape)
        images = np.random.default_rng(0).random((8, *shape), dtype=np.float32)
        r = check_onnx(args.onnx, model, normalize(artifact, images))
        print(f"ONNX: {args.onnx} (onnxruntime vs PyTorch max |error| {r['max_abs_error']:.2g}, "
              f"{'within' if r['within_tolerance'] else 'OUTSIDE'} atol {r['atol']:g} + rtol {r['rtol']:g})")
        if not r["within_tolerance"]:
            raise ExportError(f"the ONNX model {args.onnx} disagrees with PyTorch beyond the tolerance "
                              f"(max |error| {r['max_abs_error']:.3g}); the artifact was not written")
    flagged = [f for f in art.lint(artifact) if f.level == "error"]
    if flagged:
        raise ExportError("the exported artifact holds values that are certainly wrong, not written:\n  "
                          + "\n  ".join(map(str, flagged)))
    out = art.save(artifact, args.output)
    stats, total = artifact.layer_stats(), artifact.totals()
    size = out.stat().st_size
    print(artifact.describe())
    print(f"\nhost layers (float): {', '.join(n.name for n in artifact.host_nodes) or 'none'}")
    if artifact.meta["export"]["host_fallback"]:
        print(f"ternary layers kept on the host: {', '.join(artifact.meta['export']['host_fallback'])}")
    ideal = total["weights"] * 32 / total["compression"] / 8 if total["weights"] else 0
    print(f"ternary weights: {total['weights'] * 4:,} B as float32 -> codes {total['code_bytes']:,} B + "
          f"indexers {total['indexer_bytes']:,} B (eq 2.8: {art.fmt_rate(total['compression'])}x = {ideal:,.0f} B)")
    v = artifact.meta["export"].get("verification")
    if v:
        print(f"check on {v['images']} calibration images: integer vs float top-1 agreement "
              f"{v['top1_agreement']:.1f}% (threshold {v['min_agreement']:g}%), "
              f"max |logit error| {v['max_abs_logit_error']:.4g}")
    else:
        print("integer vs float check skipped (--no-verify)")
    for finding in art.lint(artifact):
        print(f"{finding}")   # warnings only: errors stopped the export above
    if args.qonnx:
        from .qonnx import export_qonnx
        export_qonnx(artifact, args.qonnx)
        print(f"QONNX: {args.qonnx} (run it with pesto.export.qonnx.run_qonnx or qonnx's execute_onnx)")
    if args.stats_json:
        from ..util import atomic_write_text
        atomic_write_text(args.stats_json, json.dumps({"layers": stats, "totals": total, "artifact_bytes": size},
                                                      indent=1, default=str))
    print(f"wrote {out} ({size:,} bytes) in {time.perf_counter() - t0:.1f} s")
    return 0
