"""`export-to-fpga --qonnx`: the integer pipeline as QONNX, run by qonnx's own executor against
the integer reference on real Fashion-MNIST images of the embedded model's export.

The stated tolerance (docs/interop.md): each accelerated layer, fed the reference's own input,
matches it on all but a few in 10^4 outputs and never by more than one LSB (the output stage's
acc * mult rounded to float32); end to end the logits agree to a small fraction of their range
and the top-1 class agrees on every image.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from pesto.cli import main
from pesto.export.qonnx import QONNX_DOMAIN, compare_layers, compare_with_reference, run_qonnx
from pesto.reference.network import normalize


@pytest.fixture(scope="module")
def exported(tmp_path_factory, fmnist):
    folder = tmp_path_factory.mktemp("qonnx")
    from pesto.train.checkpoint import default_checkpoint_path
    np.save(folder / "calib.npy", fmnist[0][:64])
    assert main(["export-to-fpga", str(default_checkpoint_path()), "-o", str(folder / "m.pesto"), "-q",
                 "--calib-data", str(folder / "calib.npy"), "--calib-images", "64", "--qonnx",
                 str(folder / "m.qonnx.onnx")]) == 0
    from pesto import artifact
    return artifact.load(folder / "m.pesto"), folder / "m.qonnx.onnx"


def test_qonnx_graph_has_quant_nodes_and_a_symbolic_batch(exported):
    art, path = exported
    model = onnx.load(path)
    quants = [n for n in model.graph.node if n.op_type == "Quant"]
    assert all(n.domain == QONNX_DOMAIN for n in quants)
    weights = {n.input[0] for n in quants} & {i.name for i in model.graph.initializer}
    assert len(weights) >= len(art.layers)                      # every ternary weight through a Quant
    ternary = [n for n in quants if n.input[0] in weights and onnx.helper.get_attribute_value(
        next(a for a in n.attribute if a.name == "narrow"))]
    assert len(ternary) >= len(art.layers)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert not {n.op_type for n in model.graph.node} & {"Identity", "Slice", "Pad"}


def test_each_layer_matches_the_reference_within_one_lsb(exported, fmnist):
    art, _ = exported
    rows = compare_layers(art, normalize(art, fmnist[1][:4]))
    assert len(rows) == len(art.layers) and all(r["max_lsb"] <= 1 for r in rows), rows
    total, mismatched = sum(r["outputs"] for r in rows), sum(r["mismatches"] for r in rows)
    assert mismatched / total < 5e-4, (mismatched, total)


def test_whole_network_in_qonnx_executor(exported, fmnist):
    art, path = exported
    x = normalize(art, fmnist[1][:16])
    r = compare_with_reference(art, path, x)
    assert r["top1_agreement"] == 100.0
    assert r["max_abs_logit_error"] < 0.01 * r["logit_range"]
    assert r["int16_mismatch_fraction"] < 0.1 and r["int16_max_lsb_difference"] <= 16
    assert np.allclose(run_qonnx(path, x[:3]), run_qonnx(path, x)[:3])  # batch size free


@pytest.fixture(scope="module")
def resnet8(tmp_path_factory, fmnist):
    """A ternary CIFAR-style ResNet-8 on 12x12 crops (every layer kind of ResNet-20, option-A
    shortcuts included, a third of the layers): float ONNX and QONNX exports of it."""
    import warnings

    import torch
    from pesto.export import export_model
    from pesto.export.onnx import export_onnx
    from pesto.export.qonnx import export_qonnx
    from pesto.models.resnet_cifar import cifar_resnet
    from pesto.quant import ternarize_model
    torch.manual_seed(0)
    model = ternarize_model(cifar_resnet(8, in_channels=1, num_classes=10, input_size=12), cg=16).eval()
    folder = tmp_path_factory.mktemp("resnet8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        art = export_model(model, fmnist[0][:16, :, 8:20, 8:20], mean=[0.286], std=[0.353], verify=0)
    return export_onnx(model, folder / "float.onnx", (1, 12, 12)), export_qonnx(art, folder / "q.onnx")


def _channels_last(path):
    """The preprocessing FINN and hls4ml run on a QONNX model first: qonnx's cleanup, channels-last
    conversion, Gemm -> MatMul (batch 1)."""
    import warnings
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.util.cleanup import cleanup_model
    m = ModelWrapper(str(path))
    for v in (*m.graph.input, *m.graph.output):
        v.type.tensor_type.shape.dim[0].dim_value = 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # GemmToMatMul's note on Gemm opset versions
        m = cleanup_model(m).transform(ConvertToChannelsLastAndClean()).transform(GemmToMatMul())
    return cleanup_model(m)


def test_qonnx_goes_through_qonnx_channels_last_preprocessing(resnet8):
    _, path = resnet8
    m = _channels_last(path)
    assert "Quant" in {n.op_type for n in m.graph.node} and m.get_tensor_shape(m.graph.input[0].name)[0] == 1


def test_hls4ml_converts_the_float_onnx(resnet8, tmp_path):
    """The float export (symbolic batch, option-A shortcuts as 1x1 convs) through hls4ml's ONNX
    front end: no node type it refuses (it refused Identity, then Slice, before)."""
    import warnings
    hls4ml = pytest.importorskip("hls4ml")
    path, _ = resnet8
    m = _channels_last(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = hls4ml.utils.config_from_onnx_model(m, granularity="name", backend="Vitis")
        graph = hls4ml.converters.convert_from_onnx_model(m, output_dir=str(tmp_path / "hls4ml"), backend="Vitis",
                                                         hls_config=cfg)
    kinds = {type(layer).__name__ for layer in graph.get_layers()}
    assert any("Conv2D" in k for k in kinds) and any("Dense" in k for k in kinds), kinds
