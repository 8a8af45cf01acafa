"""Export of a sub-net checkpoint (pesto train --mode ast) to one artifact with all its sub-nets:
shared codes and formats, each sub-net bit-exact between the integer reference and its torch
fake-quant forward, its codes equal to the trained sub-net's, the command's per-sub-net tables."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pesto import artifact as A
from pesto import geometry
from pesto.errors import ConfigError
from pesto.export import export_model, fakequant
from pesto.models import build_model
from pesto.prune.subnets import SwitchBatchNorm2d, select_subnet
from pesto.quant import ternary_codes, ternary_layers
from pesto.reference import run
from pesto.train.ast_gc import AST
from pesto.train.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from pesto.train.loop import TrainConfig

MODEL_CFG = dict(name="resnet20", in_channels=1, num_classes=10, input_size=28)
DATA = dict(dataset="fashion-mnist", mean=[0.2860], std=[0.3530])


def ast_checkpoint(path, seed=0, **kw):
    """A ResNet-20 with 3 sub-nets whose masks come from the method's own update (30/50/70 %), each
    with its own BN statistics, saved as a `pesto train` checkpoint."""
    torch.manual_seed(seed)
    cfg = TrainConfig(mode="ast", subnets=[0.3, 0.5, 0.7], **kw)
    model = AST.prepare(build_model("resnet20", 1, 10, 28), cfg.quant)
    method = AST(model, cfg, total_steps=4)
    for k in range(3):
        method.update_masks(k, 10)                           # past the window: the targets
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in (b for s in model.modules() if isinstance(s, SwitchBatchNorm2d) for b in s.bns):
            bn.running_mean.uniform_(-0.2, 0.2, generator=g)
            bn.running_var.uniform_(0.5, 2.0, generator=g)
            bn.weight.uniform_(0.5, 1.5, generator=g)
            bn.bias.uniform_(-0.2, 0.2, generator=g)
    subs = [{"name": n, "test_acc": 80.0 + k, "images": 10000, "group_sparsity": t}
            for k, (n, t) in enumerate(zip(model.subnet_names, (0.3, 0.5, 0.7)))]
    save_checkpoint(path, model, model_cfg=MODEL_CFG, quant=cfg.quant, data=DATA, epoch=1,
                    history=[{"epoch": 1, "test_acc": 81.0, "subnets": subs}], args={})
    return load_checkpoint(path)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, fmnist):
    path = tmp_path_factory.mktemp("ast") / "ast.pt"
    ckpt = ast_checkpoint(path)
    art = export_model(ckpt, fmnist[0][:32], num_calibration=32, verify=8)
    return ckpt, art


def test_one_artifact_holds_every_subnet_with_shared_codes_and_formats(exported, tmp_path):
    ckpt, art = exported
    assert art.num_subnets == 3 and art.subnet_names == ["s30", "s50", "s70"]
    metas = [s.meta for s in art.subnets]
    assert [m["target_group_sparsity"] for m in metas] == [0.3, 0.5, 0.7]
    assert metas[1]["accuracy"] == {"top1_percent": 81.0, "images": 10000, "split": "test",
                                    "measured_by": "pesto train (torch forward of the ternary sub-net, float)"}
    assert all(m["verification"]["top1_agreement"] >= 80 for m in metas)
    stats = art.subnet_stats()
    assert stats[0]["nnz_groups"] > stats[1]["nnz_groups"] > stats[2]["nnz_groups"]
    assert stats[2]["group_sparsity"] >= 0.7 - 1e-3            # the mask, plus groups whose codes are zero
    # the trained sub-net k's codes are exactly the artifact's sub-net k's (the shared-codes rule end to end)
    model = model_from_checkpoint(ckpt)
    for k in range(3):
        select_subnet(model, k)
        view = art.subnet(k)
        for (name, layer, cg), tc in zip(ternary_layers(model), view.layers):
            assert tc.name == name
            assert np.array_equal(tc.codes, ternary_codes(layer)[0].numpy())
    back = A.load(A.save(art, tmp_path / "ast.pesto"))
    assert back.subnet_names == art.subnet_names and back.subnets[2].meta == art.subnets[2].meta


def test_every_subnet_is_bit_exact_between_reference_and_fakequant(exported, fmnist):
    _, art = exported
    x = fmnist[1][:4]
    outs = []
    for k, name in enumerate(art.subnet_names):
        golden = run(art, x, subnet=name)
        assert np.array_equal(golden, run(art.subnet(k), x, conv=fakequant.conv))
        outs.append(golden)
    assert not np.array_equal(outs[0], outs[2])                # the sub-nets really differ
    with pytest.raises(ConfigError, match="sub-net"):
        run(art, x)


def test_the_subnets_float_models_and_integer_pipelines_agree(exported, fmnist):
    ckpt, art = exported
    model = model_from_checkpoint(ckpt)
    mean, std = DATA["mean"][0], DATA["std"][0]
    x = fmnist[1][:16]
    xt = (torch.from_numpy(x).float() / 255 - mean) / std
    for k in range(3):
        select_subnet(model, k)
        with torch.no_grad():
            ref = model(xt).argmax(1).numpy()
        assert (run(art, x, subnet=k).argmax(1) == ref).mean() >= 0.85


def test_export_command_prints_a_table_per_subnet_and_exports_one_alone(exported, tmp_path, capsys):
    from pesto.cli import main
    ckpt, _ = exported
    out = tmp_path / "ast.pesto"
    assert main(["export-to-fpga", ckpt["path"], "-o", str(out), "--calib-images", "16", "-q", "--no-verify",
                 "--stats-json", str(tmp_path / "s.json")]) == 0
    text = capsys.readouterr().out
    for k, name in enumerate(("s30", "s50", "s70")):
        assert f"sub-net {k} '{name}':" in text
    assert "stored (union of the 3 sub-nets' groups)" in text and "stored once for all 3 sub-nets" in text
    stats = json.loads((tmp_path / "s.json").read_text())
    assert [s["name"] for s in stats["subnets"]] == ["s30", "s50", "s70"]
    art = A.load(out)
    alone = export_model(ckpt["path"], num_calibration=16, verify=0, subnet="s50")
    assert alone.num_subnets == 1 and alone.subnet_names == ["s50"]
    assert alone.meta["subnet"]["meta"]["target_group_sparsity"] == 0.5
    # exported alone it has its own formats; its codes are the same
    for a, b in zip(alone.layers, art.subnet(1).layers):
        assert np.array_equal(a.codes, b.codes)


def test_element_masks_cannot_share_one_artifact(tmp_path, fmnist):
    torch.manual_seed(0)
    cfg = TrainConfig(mode="ast", pattern="nm-element", subnets=["2:4", "1:4"])
    model = AST.prepare(build_model("resnet20", 1, 10, 28), cfg.quant)
    AST(model, cfg, 4).update_masks(0, 10)
    save_checkpoint(tmp_path / "el.pt", model, model_cfg=MODEL_CFG, quant=cfg.quant, data=DATA)
    with pytest.raises(ConfigError, match="element-level .* --subnet NAME"):
        export_model(str(tmp_path / "el.pt"), fmnist[0][:8], num_calibration=8, verify=0)
    art = export_model(str(tmp_path / "el.pt"), fmnist[0][:8], num_calibration=8, verify=0, subnet="n2m4")
    layer = art.layers[0]
    nz = (layer.codes != 0).transpose(0, 2, 3, 1).reshape(-1, 4).sum(1)
    assert nz.max() <= 2                                      # 2:4 along the input channels
    with pytest.raises(ConfigError, match="has no sub-nets"):
        from pesto.quant import ternarize_model
        export_model(ternarize_model(build_model("resnet20", 1, 10, 28)), fmnist[0][:8], num_calibration=8,
                     verify=0, subnet=0)
    assert geometry.num_groups(16, 16) == 1
