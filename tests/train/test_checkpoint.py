"""Checkpoint round trip and every kind of bad checkpoint -> CheckpointError."""

import pytest
import torch

from pesto.errors import CheckpointError
from pesto.models import build_model
from pesto.quant import ternarize_model, ternary_layers
from pesto.train.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint

CFG = dict(name="resnet20", in_channels=1, num_classes=10, input_size=28)
DATA = dict(dataset="fashion-mnist", mean=[0.286], std=[0.353])


def _save(path, mode="wpc", cg=8, name="resnet20"):
    model = build_model(name, 1, 10, 28)
    if mode in ("tern", "naive", "wpc"):
        ternarize_model(model, cg=cg)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 1, 28, 28)).sum().backward()
    opt.step()
    ckpt = save_checkpoint(path, model, model_cfg=dict(CFG, name=name),
                           quant=dict(mode=mode, cg=cg, keep_first_last=True, cg_overrides={}),
                           data=DATA, epoch=3, optimizer=opt,
                           scheduler=dict(milestones=[80, 120], gamma=0.1, base_lr=0.1, last_epoch=3),
                           history=[{"epoch": 1, "loss": 2.0}], args={"out": path})
    return model, ckpt


def test_round_trip_rebuilds_the_same_ternary_model(tmp_path):
    p = tmp_path / "a.pt"
    model, _ = _save(p)
    ckpt = load_checkpoint(p)
    assert ckpt["format"] == "pesto-checkpoint" and ckpt["version"] == 1
    assert ckpt["model"] == CFG and ckpt["quant"]["mode"] == "wpc" and ckpt["epoch"] == 3
    assert ckpt["data"]["mean"] == [0.286]
    assert ckpt["args"]["out"] == str(p)
    rebuilt = model_from_checkpoint(ckpt)
    assert [(n, cg) for n, _, cg in ternary_layers(rebuilt)] == [(n, cg) for n, _, cg in ternary_layers(model)]
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(rebuilt(x), model.eval()(x))
    assert "momentum_buffer" in str(ckpt["optimizer"]["state"][0].keys())
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves no temp file


def test_missing_corrupt_truncated_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    p = tmp_path / "a.pt"
    _save(p)
    data = p.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt, truncated"):
        load_checkpoint(tmp_path / "trunc.pt")
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF  # inside the tensor data: torch.load alone does not notice
    (tmp_path / "flip.pt").write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "flip.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a pesto checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="corrupt, truncated or not a PyTorch file"):
        load_checkpoint(tmp_path / "text.pt")


def test_pickled_objects_are_refused(tmp_path):
    import argparse
    torch.save({"format": "pesto-checkpoint", "args": argparse.Namespace(a=1)}, tmp_path / "e.pt")
    with pytest.raises(CheckpointError, match=r"was refused: it holds Python objects.*argparse\.Namespace") as e:
        load_checkpoint(tmp_path / "e.pt")
    assert "weights_only" in str(e.value) and "corrupt" not in str(e.value)


def test_wrong_architecture_is_named(tmp_path):
    p = tmp_path / "a.pt"
    _save(p, name="resnet32")
    ckpt = load_checkpoint(p)
    ckpt["model"]["name"] = "resnet20"  # claims resnet20, holds resnet32 weights
    with pytest.raises(CheckpointError, match="does not belong to a resnet20.*unexpected"):
        model_from_checkpoint(ckpt)
    _save(p, mode="fp")
    ckpt = load_checkpoint(p)
    ckpt["quant"]["mode"] = "wpc"  # float state dict, ternary config
    with pytest.raises(CheckpointError, match="missing .*parametrizations"):
        model_from_checkpoint(ckpt)


def test_init_copies_float_weights_into_a_ternary_model(tmp_path):
    from pesto.train.checkpoint import build_from_config
    from pesto.train.loop import _init_from
    p = tmp_path / "fp.pt"
    fp_model, _ = _save(p, mode="fp")
    tern = build_from_config(CFG, dict(mode="wpc", cg=16, keep_first_last=True, cg_overrides={}))
    _init_from(tern, str(p))
    assert torch.equal(tern.layer2[0].conv1.parametrizations.weight.original, fp_model.layer2[0].conv1.weight)
    big = build_from_config(dict(CFG, name="resnet32"), dict(mode="fp", cg=16, keep_first_last=True,
                                                           cg_overrides={}))
    with pytest.raises(CheckpointError, match="same architecture"):
        _init_from(big, str(p))  # resnet20 weights cannot fill a resnet32


def test_release_drops_optimizer_state_and_writes_a_model_card(tmp_path):
    import json
    from pesto.train.release import release
    src = tmp_path / "run.pt"
    model, _ = _save(src)
    ckpt = load_checkpoint(src)
    ckpt["history"] = [{"epoch": 3, "lr": 0.1, "train_loss": 0.5, "test_acc": 80.0, "overall_sparsity": 0.5,
                        "group_sparsity": 0.25, "in_group_sparsity": 0.3, "compression_rate": 21.3,
                        "time_s": 60.0, "steps": 10, "layers": {"layer1.0.conv1": {
                            "group_sparsity": 0.1, "layer_sparsity": 0.4, "delta": 0.9}}}]
    torch.save({k: v for k, v in ckpt.items() if k != "path"}, src)
    card = release(src, tmp_path / "out" / "m.pt", command="pesto train --recipe x")
    shipped = load_checkpoint(tmp_path / "out" / "m.pt")
    assert shipped["optimizer"] is None and card["bytes"] < src.stat().st_size
    assert torch.equal(model_from_checkpoint(shipped).layer1[0].conv1.weight, model.layer1[0].conv1.weight)
    assert json.loads((tmp_path / "out" / "m.json").read_text())["group_sparsity"] == 0.25
    md = (tmp_path / "out" / "m.md").read_text()
    assert "pesto train --recipe x" in md and "21.3x" in md and "| layer1.0.conv1 | 10.0 |" in md
