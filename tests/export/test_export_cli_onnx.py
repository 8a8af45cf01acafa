"""`pesto export-to-fpga` end to end, and the ONNX export checked in onnxruntime."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from pesto import artifact as A
from pesto.cli import main
from pesto.export.onnx import ATOL, RTOL, check_onnx, export_onnx, plain_float_model, run_onnx
from pesto.reference.network import normalize


@pytest.fixture(scope="module")
def checkpoint(resnet20, tmp_path_factory):
    from pesto.train.checkpoint import save_checkpoint
    path = tmp_path_factory.mktemp("ckpt") / "resnet20.pt"
    save_checkpoint(path, resnet20, model_cfg={"name": "resnet20", "in_channels": 1, "num_classes": 10,
                                               "input_size": 28},
                    quant={"mode": "wpc", "cg": 16, "keep_first_last": True},
                    data={"dataset": "fashion-mnist", "mean": [0.286], "std": [0.353]}, epoch=3)
    return path


def test_cli_exports_a_checkpoint(checkpoint, tmp_path, capsys, resnet20_artifact):
    out, onnx_path, stats = tmp_path / "r20.pesto", tmp_path / "r20.onnx", tmp_path / "stats.json"
    rc = main(["export-to-fpga", str(checkpoint), "-o", str(out), "--calib-images", "64", "-q",
               "--onnx", str(onnx_path), "--stats-json", str(stats)])
    text = capsys.readouterr().out
    assert rc == 0, text
    art = A.load(out)
    assert len(art.layers) == 18
    # the table: one row per accelerated layer with shape, groups, non-zero groups, rate, speedup
    t = art.totals()
    row = next(line for line in text.splitlines() if line.startswith("layer3.2.conv2"))
    s = next(s for s in art.layer_stats() if s["name"] == "layer3.2.conv2")
    assert "64x64x3x3" in row and f"{s['groups']}" in row and f"{s['nnz_groups']}" in row
    assert f"{s['speedup_ideal']:.2f}" in row and f"{s['compression']:.2f}" in row
    total = next(line for line in text.splitlines() if line.startswith("total"))
    assert f"{t['nnz_groups']}" in total and f"{t['speedup_ideal']:.2f}" in total
    assert "within atol" in text and "host layers (float): conv1, fc" in text
    assert json.loads(stats.read_text())["totals"]["nnz_groups"] == t["nnz_groups"]
    assert onnx_path.stat().st_size > 0


def test_cli_errors(checkpoint, tmp_path, capsys):
    """Usage errors (from the command line alone) exit 2, errors found in the files exit 1."""
    assert main(["export-to-fpga", str(tmp_path / "nope.pt"), "-o", str(tmp_path / "x.pesto")]) == 2
    assert "does not exist" in capsys.readouterr().err
    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(3)}, plain)
    assert main(["export-to-fpga", str(plain), "-o", str(tmp_path / "x.pesto")]) == 1
    assert "--arch" in capsys.readouterr().err
    assert main(["export-to-fpga", str(plain), "--arch", "resnet20", "-o", str(tmp_path / "x.pesto")]) == 1
    assert "not a resnet20 state dict" in capsys.readouterr().err
    assert main(["export-to-fpga", str(checkpoint), "--arch", "resnet56", "-o", str(tmp_path / "x.pesto")]) == 1
    assert "not the --arch resnet56" in capsys.readouterr().err
    assert main(["export-to-fpga", str(checkpoint), "--cg", "0", "-o", str(tmp_path / "x.pesto")]) == 2
    assert "--cg" in capsys.readouterr().err
    assert not (tmp_path / "x.pesto").exists()


def test_cli_plain_state_dict_with_calibration_file(tmp_path, capsys, fmnist):
    from pesto.models import build_model
    torch.manual_seed(0)
    sd = tmp_path / "plain.pt"
    torch.save(build_model("resnet20", in_channels=1, num_classes=10, input_size=28).state_dict(), sd)
    calib = tmp_path / "calib.npy"
    np.save(calib, fmnist[0][:16])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        rc = main(["export-to-fpga", str(sd), "--arch", "resnet20", "--calib-data", str(calib), "--cg", "8",
                   "--mean", "0.286", "--std", "0.353", "--no-verify", "-q", "-o", str(tmp_path / "p.pesto")])
    assert rc == 0, capsys.readouterr().err
    assert any("Accuracy needs ternary training" in str(x.message) for x in w)
    assert all(layer.cg == 8 for layer in A.load(tmp_path / "p.pesto").layers)


def test_onnx_reproduces_the_float_model(resnet20, resnet20_artifact, fmnist, tmp_path):
    path = export_onnx(resnet20, tmp_path / "r20.onnx", (1, 28, 28))
    x = normalize(resnet20_artifact, fmnist[1][:32])
    r = check_onnx(path, resnet20, x)
    assert r["within_tolerance"] and r["top1_agreement"] == 100.0, r
    assert r["max_abs_error"] <= ATOL + RTOL * 10
    # plain float weights; the exporter folds BN into them, so each output channel of a ternary
    # layer holds -a_n, 0, +a_n (up to float32 rounding of the folding)
    import onnx
    from onnx import numpy_helper
    model = onnx.load(path)
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    conv_w = [w for name, w in weights.items() if w.ndim == 4 and w.shape[1] == 16 and w.shape[0] == 16]
    assert len(conv_w) == 6
    for w in conv_w:
        for row in w:
            mags = np.abs(row[row != 0])
            assert mags.size == 0 or mags.max() - mags.min() <= 1e-6 * mags.max()
    # batch size is dynamic
    assert run_onnx(path, x[:3]).shape == (3, 10)


def test_plain_float_model_is_the_ternary_forward(resnet20):
    plain = plain_float_model(resnet20)
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(plain(x), resnet20(x))
    assert not any("parametrizations" in k for k in plain.state_dict())
    assert any("parametrizations" in k for k in resnet20.state_dict())   # the original is untouched
