"""`pesto demo`: the whole flow on the embedded model, in a few minutes on a laptop CPU.

  1. load the trained, compressed ResNet-20 for Fashion-MNIST shipped in sw/pesto/assets/
  2. export it to the accelerator artifact (packed codes of non-zero groups + group indexer)
  3. accuracy: the float model vs the integer pipeline (pesto.reference) on test images
  4. test images through the accelerator RTL in simulation (driver backend "sim"): every
     accelerated layer runs with group skipping on and off (the dense-ternary baseline), each
     output checked bit for bit against the integer reference, and so are the logits; per-layer
     cycles, speedups and the end-to-end time per image at the fabric clock

Everything lands in --out (default runs/demo/): demo.json (all figures), layers.csv, the
artifact, and speedup.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from .errors import CheckpointError

REQUIRES = ("torch",)   # checked by pesto.cli before the command runs (the `train` extra)

EMBEDDED = "sw/pesto/assets/resnet20_fmnist_wpc.pt"
REMAKE = "pesto train --recipe fmnist-demo --out sw/pesto/assets/resnet20_fmnist_wpc.pt"  # docs/training.md


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--out", type=Path, default=Path("runs/demo"), help="output folder (default runs/demo)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help=f"a `pesto train` checkpoint (default: the embedded {EMBEDDED})")
    parser.add_argument("--images", type=int, default=1000,
                        help="test images for the accuracy comparison (default 1000; 10000 = the full set)")
    parser.add_argument("--sim-images", type=int, default=1,
                        help="test images through the simulated accelerator, each layer with skipping on and off "
                             "(default 1, ~40 s each; 0 skips the RTL)")
    parser.add_argument("--calibration-images", type=int, default=256,
                        help="training images that calibrate the activation formats at export (default 256)")
    parser.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator")
    parser.add_argument("--clock-mhz", type=float, default=100.0, help="fabric clock for time figures (default 100)")
    parser.add_argument("--data-root", default=None, help="folder with Fashion-MNIST (default: system paths)")


def embedded_checkpoint() -> Path:
    from .train.checkpoint import default_checkpoint_path
    path = default_checkpoint_path()
    if not path.is_file():
        raise CheckpointError(f"the embedded model {path} is missing; remake it with `{REMAKE}` (docs/training.md) "
                              f"or pass --checkpoint")
    return path


class Steps:
    """Numbered progress lines with the time each step took."""

    def __init__(self, total: int):
        self.total, self.i, self.t0 = total, 0, time.monotonic()

    def __call__(self, what: str) -> None:
        self.i += 1
        print(f"\n[{self.i}/{self.total}] {what}  (t = {time.monotonic() - self.t0:.0f} s)", flush=True)


def float_accuracy(model, artifact, images: np.ndarray, labels: np.ndarray, batch: int = 500) -> float:
    """Top-1 accuracy in percent of the float PyTorch model, normalised exactly as the integer
    pipeline is."""
    import torch
    from .reference.network import normalize
    from tqdm import tqdm
    correct = 0
    with torch.no_grad():
        for i in tqdm(range(0, len(images), batch), desc="float model", unit="batch", file=sys.stderr):
            x = torch.from_numpy(normalize(artifact, images[i:i + batch]))
            correct += int((model(x).argmax(1).numpy() == labels[i:i + batch]).sum())
    return 100.0 * correct / len(images)


def run(args) -> int:
    from . import artifact as artifact_mod
    from .bench import report
    from .bench.cli import ARTIFACT_COLUMNS, profile_artifact
    from .data import load_splits
    from .driver import Accelerator
    from .export import export_model, load_model
    from .reference import network

    use_sim = args.sim_images > 0
    step = Steps(4 if use_sim else 3)
    out = Path(args.out)
    result: dict = {"command": "pesto demo " + " ".join(sys.argv[2:]), "clock_mhz": args.clock_mhz}

    step("loading the embedded compressed ResNet-20 and Fashion-MNIST")
    ckpt = args.checkpoint or embedded_checkpoint()
    model, info = load_model(str(ckpt))
    train, test = load_splits("fashion-mnist", root=args.data_root, augment=False)
    n = min(args.images, len(test))
    images, labels = test.images[:n].numpy(), test.labels[:n].numpy()
    print(f"checkpoint {ckpt} ({info['name']}, mode {info['mode']}); {n} test images")
    result["checkpoint"] = str(ckpt)

    step("exporting to the accelerator artifact")
    n_cal = args.calibration_images
    art = export_model(str(ckpt), calib_images=train.images[:n_cal].numpy(), num_calibration=n_cal, progress=True)
    art_path = artifact_mod.save(art, out / "resnet20_fmnist.pesto")
    t = art.totals()
    size = Path(art_path).stat().st_size
    float_bytes = 4 * t["weights"]
    result["compression"] = {**t, "artifact_bytes": size, "float32_weight_bytes": float_bytes,
                             "artifact_path": str(art_path)}
    print(f"{t['layers']} accelerated layers, {t['weights']} ternary weights: group sparsity "
          f"{100 * t['group_sparsity']:.1f} %, overall sparsity {100 * t['sparsity']:.1f} %, "
          f"compression {t['compression']:.1f}x (eq 2.8), ideal skip speedup {t['speedup_ideal']:.2f}x")
    print(f"artifact {art_path}: {size / 1024:.1f} KiB (float32 weights of those layers: {float_bytes / 1024:.1f} KiB)")

    step(f"accuracy on {n} test images: float model vs integer pipeline (pesto.reference)")
    acc_float = float_accuracy(model, art, images, labels)
    pred = network.predict(art, images, progress=True)
    acc_int = float(100 * (pred == labels).mean())
    result["accuracy"] = {"images": n, "unit": "percent", "float": acc_float, "integer": acc_int,
                          "delta_points": acc_int - acc_float}
    print(f"float {acc_float:.2f} %   integer pipeline {acc_int:.2f} %   ({acc_int - acc_float:+.2f} points)")

    if use_sim:
        k = args.sim_images
        step(f"{k} test image(s) through the accelerator RTL ({args.simulator}): every layer with group "
             f"skipping on and off, checked bit for bit against the integer reference")
        print("starting the simulation (builds the RTL on first use)...", flush=True)
        t0 = time.perf_counter()
        with Accelerator(art, backend="sim", simulator=args.simulator, clock_mhz=args.clock_mhz) as acc:
            print(acc, flush=True)
            prof = profile_artifact(acc, images[:k], args.clock_mhz)
        wall = time.perf_counter() - t0
        rows, e = prof["rows"], prof["end_to_end"]
        exact = bool(np.array_equal(prof["logits"], network.run(art, images[:k])))
        pred = prof["logits"].argmax(1)
        result["simulation"] = {"images": k, "simulator": args.simulator, "bit_exact_vs_reference": exact,
                                "predictions": pred.tolist(), "labels": labels[:k].tolist(),
                                "simulation_wall_s": wall}
        result["layers"], result["end_to_end"] = rows, e
        print(report.table(rows, ARTIFACT_COLUMNS))
        print(f"logits bit-exact vs the integer reference: {'yes' if exact else 'NO'}; predicted "
              f"{pred.tolist()}, labels {labels[:k].tolist()}")
        print(f"end to end, {e['layers']} accelerated layers per image: {e['cycles_dense']:.0f} -> "
              f"{e['cycles_skip']:.0f} cycles = {e['us_per_image_dense']:.1f} -> {e['us_per_image_skip']:.1f} us "
              f"at {args.clock_mhz:g} MHz (streams included): {e['speedup']:.2f}x; compute only "
              f"{e['speedup_compute']:.2f}x; ideal {t['speedup_ideal']:.2f}x")
        report.write_results(out, "layers", rows, {"end_to_end": e}, report.table(rows, ARTIFACT_COLUMNS))
        report.plot_speedups(rows, out / "speedup.png", "ResNet-20 / Fashion-MNIST: per-layer speedup of group skipping")
        if not exact:
            from .errors import HardwareError
            _write(out, result)
            raise HardwareError("the simulated accelerator disagrees with the integer reference (see demo.json)")

    _write(out, result)
    print(f"\nwrote {out}/demo.json" + (f", {out}/layers.csv, {out}/speedup.png" if use_sim else "") +
          f", {art_path}")
    return 0


def _write(out: Path, result: dict) -> None:
    from .bench.report import json_safe
    from .util import atomic_write_text
    atomic_write_text(out / "demo.json", json.dumps(json_safe(result), indent=2) + "\n")
