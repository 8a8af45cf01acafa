"""Models quantized by other tools (pesto.export.foreign), with the real Brevitas and torchao:
a Brevitas ternary QuantConv2d keeps its own codes and scale, a non-ternary one is refused by
its quantizer's name, QuantReLU becomes ReLU with a warning, a torchao int2 model is refused."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn

from pesto.errors import UnsupportedLayerError
from pesto.export import export_model
from pesto.export.foreign import ForeignQuantizationWarning

brevitas_nn = pytest.importorskip("brevitas.nn")


def brevitas_net(weight_quant=None, **kw):
    from brevitas.quant.ternary import SignedTernaryWeightPerTensorConst
    torch.manual_seed(0)
    quant = dict(weight_quant=weight_quant or SignedTernaryWeightPerTensorConst, scaling_const=0.05) \
        if not kw else kw
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        brevitas_nn.QuantConv2d(16, 32, 3, padding=1, bias=False, **quant), nn.BatchNorm2d(32),
        brevitas_nn.QuantReLU(bit_width=8),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)).eval()


def test_brevitas_ternary_layer_keeps_its_codes_and_scale(fmnist):
    net = brevitas_net()
    q = net[2].quant_weight()
    codes, scale = q.int().numpy(), float(q.scale)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        art = export_model(net, fmnist[0][:32], mean=[0.286], std=[0.353], verify=8)
    assert any(issubclass(w.category, ForeignQuantizationWarning) and "QuantReLU" in str(w.message) for w in caught)
    (layer,) = art.layers
    assert np.array_equal(layer.codes, codes)                 # Brevitas's own codes, not re-ternarized ones
    assert art.node(layer.name).attrs["alpha"] == pytest.approx(scale, rel=1e-6)
    assert 30 < (codes != 0).mean() * 100 < 100               # a real mix of zeros and +-1
    assert art.meta["model"]["quant_mode"] == "brevitas ternary"


def test_brevitas_non_ternary_quantizer_is_refused_by_name(fmnist):
    net = brevitas_net(weight_bit_width=4)
    with pytest.raises(UnsupportedLayerError, match=r"'2'.*4-bit signed weights from Int8WeightPerTensorFloat.*not ternary"):
        export_model(net, fmnist[0][:8], verify=0)


def test_torchao_int2_model_is_refused_clearly(fmnist):
    import torchao.quantization as tq
    net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 26 * 26, 10)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tq.quantize_(net, tq.IntxWeightOnlyConfig(weight_dtype=torch.int2))
    with pytest.raises(UnsupportedLayerError, match=r"layer '3' holds a torchao quantized weight .*int2.*ternarize it with pesto"):
        export_model(net, fmnist[0][:8], verify=0)
