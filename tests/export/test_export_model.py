"""export_model: graph capture, folding, calibration, and every kind of bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from pesto import artifact as A
from pesto import numerics
from pesto.errors import CheckpointError, ConfigError, UnsupportedLayerError
from pesto.export import UntrainedWarning, export_model
from pesto.quant import ternarize_model
from pesto.reference.network import normalize, run

MEAN, STD = (0.2860,), (0.3530,)


def export(model, images, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedWarning)
        return export_model(model, images, mean=MEAN, std=STD, **kw)


def float_logits(model, artifact, images):
    with torch.no_grad():
        return model(torch.from_numpy(normalize(artifact, images))).numpy()


def test_resnet20_graph(resnet20_artifact):
    art = resnet20_artifact
    ops = [n.op for n in art.nodes]
    assert ops.count("tconv") == 18 and ops.count("add") == 9 and ops.count("shortcut") == 2
    assert [n.name for n in art.host_nodes] == ["conv1", "fc"]          # first and last layer stay float
    assert all(n.frac is not None for n in art.nodes if n.op in ("add", "shortcut", "tconv"))
    assert all(not n.layer.relu for n in art.nodes if n.op == "tconv" and n.name.endswith("conv2"))
    assert all(n.attrs["relu"] for n in art.nodes if n.op == "add")
    sc = art.node("layer2.0.shortcut").attrs
    assert (sc["stride"], sc["pad_before"], sc["pad_after"]) == (2, 8, 8)
    stats = art.layer_stats()
    assert 0.2 < art.totals()["group_sparsity"] < 0.6                    # the fixture pruned ~40 % of groups
    assert all(s["speedup_ideal"] == s["groups"] / s["nnz_groups"] for s in stats)
    assert art.meta["export"]["verification"]["top1_agreement"] == 100.0


def test_integer_pipeline_tracks_the_float_model(resnet20, resnet20_artifact, fmnist):
    x = fmnist[1][:48]
    ref = float_logits(resnet20, resnet20_artifact, x)
    got = run(resnet20_artifact, x)
    assert (ref.argmax(1) == got.argmax(1)).mean() >= 0.95
    assert np.abs(ref - got).max() < 0.02 * np.abs(ref).max()


def test_output_stage_folds_alpha_and_bn(resnet20, resnet20_artifact, fmnist):
    """One layer's int16 output, dequantized, matches BN(alpha * conv) of the float model."""
    _, trace = run(resnet20_artifact, fmnist[1][:4], trace=True)
    node = resnet20_artifact.node("layer1.0.conv1")
    x = numerics.dequantize(trace[node.inputs[0]], node.layer.f_in)
    block = resnet20.layer1[0]
    with torch.no_grad():
        want = F.relu(block.bn1(block.conv1(torch.from_numpy(x)))).numpy()
    got = numerics.dequantize(trace[node.name], node.layer.f_out)
    assert np.abs(got - want).max() <= 2.0 ** -node.layer.f_out * 2 + 1e-4 * np.abs(want).max()


def test_channels_not_divisible_by_cg_are_padded(fmnist):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 20, 3, padding=1), nn.BatchNorm2d(20), nn.ReLU(),
                          nn.Conv2d(20, 24, 3, padding=1, bias=False), nn.BatchNorm2d(24), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 10))
    ternarize_model(model, cg=16)
    art = export(model.eval(), fmnist[0][:32])
    (layer,) = art.layers
    assert layer.codes.shape == (24, 20, 3, 3) and layer.cg == 16 and layer.groups == 2
    assert layer.indexer.shape == (24, 2)
    back = A.from_bytes(A.to_bytes(art))
    assert np.array_equal(back.layers[0].codes, layer.codes)
    x = fmnist[1][:16]
    assert (float_logits(model, art, x).argmax(1) == run(back, x).argmax(1)).mean() >= 0.9


def test_pruned_output_channel_with_degenerate_bn(make_resnet, fmnist):
    """A whole output channel pruned away, with the BN statistics that leaves (var 0, big gamma)."""
    from pesto.quant import latent_weight
    model = make_resnet("resnet20", seed=3)
    conv, bn = model.layer1[0].conv1, model.layer1[0].bn1
    with torch.no_grad():
        latent_weight(conv)[5] = 0
        bn.running_var[5], bn.weight[5] = 0.0, 1e4
    art = export(model, fmnist[0][:16], verify=8)
    layer = art.node("layer1.0.conv1").layer
    assert not layer.codes[5].any() and layer.mult[5] == 0
    assert art.meta["export"]["verification"]["top1_agreement"] == 100.0


def test_cg_option_regroups(resnet20, fmnist):
    art = export(resnet20, fmnist[0][:16], cg=8, verify=0)
    assert all(layer.cg == 8 and layer.groups == layer.in_channels // 8 for layer in art.layers)


def test_fixed_and_narrow_formats(resnet20, resnet20_artifact, fmnist):
    fixed = export(resnet20, fmnist[0][:16], frac_bits=9, verify=0)
    assert {n.frac for n in fixed.nodes if n.frac is not None} == {9}
    narrow = export(resnet20, fmnist[0][:64], act_bits=12, verify=0)
    for a, b in zip(resnet20_artifact.nodes, narrow.nodes):
        if a.frac is not None:
            assert b.frac == a.frac - 4
    with pytest.raises(ConfigError, match="act_bits"):
        export(resnet20, fmnist[0][:16], act_bits=17)


def test_resnet18_projection_shortcuts_and_maxpool(make_resnet, fmnist):
    model = make_resnet("resnet18", input_size=32, cg=16)
    x = np.pad(fmnist[0][:8], ((0, 0), (0, 0), (2, 2), (2, 2)))
    art = export(model, x, verify=0)
    names = {n.name: n for n in art.nodes}
    assert names["maxpool"].op == "maxpool" and names["maxpool"].frac is None     # on the host, after conv1
    down = names["layer2.0.downsample.0"]
    assert down.op == "tconv" and down.layer.kernel == (1, 1) and down.layer.stride == 2
    assert len(art.layers) == 19
    assert (float_logits(model, art, x).argmax(1) == run(art, x).argmax(1)).mean() >= 0.9


def test_alexnet_keeps_what_the_engine_cannot_run_on_the_host(fmnist):
    from pesto.models import build_model
    torch.manual_seed(0)
    model = ternarize_model(build_model("alexnet", in_channels=1, num_classes=10, input_size=64)).eval()
    x = np.kron(fmnist[0][:4], np.ones((1, 1, 2, 2), np.uint8)[..., :, :])[:, :, :64, :64]
    x = np.pad(x, ((0, 0), (0, 0), (0, 64 - x.shape[2]), (0, 64 - x.shape[3])))
    with pytest.warns(UserWarning, match=r"'conv2'.*\(5, 5\).*host"):
        art = export_model(model, x, mean=MEAN, std=STD, verify=4)
    assert art.meta["export"]["host_fallback"] == ["conv2", "fc1", "fc2"]     # 5x5 conv, ternary linears
    assert [l.name for l in art.layers] == ["conv3", "conv4", "conv5"]
    assert art.node("pool_2").op == "maxpool" and art.node("pool_2").frac is not None   # int16 max pool
    assert art.node("avgpool").attrs["output_size"] == [6, 6]
    assert art.meta["export"]["verification"]["top1_agreement"] == 100.0


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        return self.gate(self.conv(x)).flatten(1)


class Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)

    def forward(self, x):
        y = self.conv(x)
        return torch.cat([y, y], 1).flatten(1)


def test_unsupported_layers_are_named(fmnist):
    x = fmnist[0][:4]
    with pytest.raises(UnsupportedLayerError, match=r"'gate'.*Sigmoid"):
        export(Gated(), x)
    with pytest.raises(UnsupportedLayerError, match=r"cat"):
        export(Concat(), x)
    depthwise = nn.Sequential(nn.Conv2d(1, 8, 3), nn.Conv2d(8, 8, 3, groups=8), nn.Conv2d(8, 8, 3),
                              nn.Flatten(), nn.Linear(8 * 22 * 22, 10))
    with pytest.raises((UnsupportedLayerError, ConfigError), match=r"groups"):
        export(depthwise, x)


def test_nan_and_inf_weights(resnet20, fmnist):
    import copy
    for bad in (float("nan"), float("inf")):
        model = copy.deepcopy(resnet20)
        with torch.no_grad():
            model.layer2[1].bn1.running_var[3] = bad
        with pytest.raises(ConfigError, match=r"layer2\.1\.bn1\.running_var.*NaN or infinite"):
            export(model, fmnist[0][:4])


def test_plain_model_is_ternarized_with_a_warning(fmnist):
    from pesto.models import build_model
    torch.manual_seed(1)
    model = build_model("resnet20", in_channels=1, num_classes=10, input_size=28).eval()
    with pytest.warns(UntrainedWarning, match="accuracy needs ternary training|Accuracy needs"):
        art = export_model(model, fmnist[0][:16], mean=MEAN, std=STD, verify=0)
    assert len(art.layers) == 18
    assert not any(hasattr(m, "parametrizations") for m in model.modules())   # the caller's model is untouched


def test_accumulator_overflow_is_refused(fmnist):
    model = nn.Sequential(nn.Conv2d(1, 7300, 1), nn.Conv2d(7300, 2, 3), nn.Flatten(), nn.Linear(2 * 26 * 26, 2))
    ternarize_model(model, cg=16)
    with pytest.raises(ConfigError, match="fan-in.*65535"):
        export(model.eval(), fmnist[0][:2], verify=0)


def _checkpoint(tmp_path, model, name="resnet20", mode="wpc"):
    from pesto.train.checkpoint import save_checkpoint
    path = tmp_path / f"{name}.pt"
    save_checkpoint(path, model, model_cfg={"name": name, "in_channels": 1, "num_classes": 10, "input_size": 28},
                    quant={"mode": mode, "cg": 16, "keep_first_last": True},
                    data={"dataset": "fashion-mnist", "mean": MEAN, "std": STD}, epoch=1)
    return path


def test_checkpoint_round_trip_and_other_architecture(resnet20, resnet20_artifact, tmp_path, fmnist):
    path = _checkpoint(tmp_path, resnet20)
    art = export_model(path, fmnist[0][:64], verify=0)        # mean/std come from the checkpoint
    assert art.meta["input"]["mean"] == pytest.approx(MEAN) and art.meta["model"]["name"] == "resnet20"
    for a, b in zip(art.layers, resnet20_artifact.layers):
        assert np.array_equal(a.codes, b.codes) and np.array_equal(a.mult, b.mult)
    wrong = _checkpoint(tmp_path, resnet20, name="resnet32")
    with pytest.raises(CheckpointError, match="resnet32"):
        export_model(wrong, fmnist[0][:4])
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CheckpointError):
        export_model(truncated, fmnist[0][:4])


def test_calibration_input_checks(resnet20):
    with pytest.raises(ConfigError, match="channels"):
        export_model((resnet20, {"name": "r", "source": "m", "mode": "wpc", "in_channels": 1}),
                     np.zeros((4, 3, 28, 28), np.float32))
    with pytest.raises(ConfigError, match="NaN"):
        export(resnet20, np.full((2, 1, 28, 28), np.nan, np.float32))


def test_run_entry_point_normalises_once(resnet20_artifact, fmnist):
    x = fmnist[1][:3]
    want = run(resnet20_artifact, x)
    assert np.array_equal(run(resnet20_artifact, x.astype(np.float32) / np.float32(255)), want)
    assert np.array_equal(run(resnet20_artifact, normalize(resnet20_artifact, x), normalized=True), want)
    # batch invariant (the driver may run image by image): single (C, H, W) images give the same bits
    x = fmnist[1][:12]
    want = run(resnet20_artifact, x)
    assert all(np.array_equal(run(resnet20_artifact, x[i]), want[i:i + 1]) for i in range(len(x)))
    with pytest.raises(ConfigError, match=r"\(batch, 1, 28, 28\)"):
        run(resnet20_artifact, np.zeros((2, 3, 28, 28), np.uint8))
