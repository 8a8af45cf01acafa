"""QONNX export against the integer reference: the embedded ResNet-20 on the first Fashion-MNIST
test images, each accelerated layer on its own (fed the reference's input) and end to end, run by
qonnx's own executor. Writes results/qonnx.json and results/qonnx.md (quoted by docs/interop.md).

    .venv/bin/python benchmarks/export/qonnx_check.py [--images 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

from pesto.data import load_splits
from pesto.export import export_model
from pesto.export.qonnx import compare_layers, compare_with_reference, export_qonnx
from pesto.reference.network import normalize
from pesto.train.checkpoint import default_checkpoint_path
from pesto.util import atomic_write_text

OUT = Path(__file__).parent / "results"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=20)
    args = p.parse_args()
    train, test = load_splits("fashion-mnist", augment=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        art = export_model(str(default_checkpoint_path()), train.images[:256].numpy(), verify=0)
    x = normalize(art, test.images[:args.images].numpy())
    per_layer = compare_layers(art, x)
    total, bad = sum(r["outputs"] for r in per_layer), sum(r["mismatches"] for r in per_layer)
    worst = max(r["max_lsb"] for r in per_layer)
    with tempfile.TemporaryDirectory() as tmp:
        path = export_qonnx(art, Path(tmp) / "m.qonnx.onnx")
        whole = compare_with_reference(art, path, x)
    result = {"command": "python benchmarks/export/qonnx_check.py " + " ".join(sys.argv[1:]),
              "model": "embedded ResNet-20 (sw/pesto/assets/resnet20_fmnist_wpc.pt), 256 calibration images",
              "images": args.images,
              "per_layer": {"outputs": total, "mismatches": bad, "mismatch_fraction": bad / total, "max_lsb": worst,
                            "layers": per_layer},
              "end_to_end": {k: v for k, v in whole.items() if k != "mismatches_per_tensor"}}
    OUT.mkdir(exist_ok=True)
    atomic_write_text(OUT / "qonnx.json", json.dumps(result, indent=1) + "\n")
    e = result["end_to_end"]
    md = (f"# QONNX (qonnx executor) vs the integer reference\n\n`{result['command']}`: {result['model']}, "
          f"{args.images} Fashion-MNIST test images\n\n"
          f"| check | figure |\n|---|---|\n"
          f"| each accelerated layer on the reference's input | {bad} of {total:,} outputs differ "
          f"({bad / total:.1e}), at most {worst} LSB |\n"
          f"| end to end, int16 tensors | {100 * e['int16_mismatch_fraction']:.2f} % differ, at most "
          f"{e['int16_max_lsb_difference']} LSB |\n"
          f"| end to end, logits | max abs error {e['max_abs_logit_error']:.2g} (range {e['logit_range']:.3g}) |\n"
          f"| top-1 agreement | {e['top1_agreement']:.1f} % |\n")
    atomic_write_text(OUT / "qonnx.md", md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
