"""`pesto transfer` end to end on the small backbone: the run, its checkpoint, resume, the
deployed artifact (backbone layers byte-identical, integer pipeline vs torch), and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transfer_helpers import SIZE, crop, save_small_checkpoint, small_config

from pesto import artifact
from pesto.cli import main
from pesto.errors import CheckpointError, ConfigError, DatasetError
from pesto.train.checkpoint import load_checkpoint, state_checksum
from pesto.transfer import transfer
from pesto.transfer.checkpoint import build_net, load_backbone, load_transfer
from pesto.transfer.deploy import export_transferred, tconv_layers, verify


def test_run_writes_a_checkpoint_tied_to_its_backbone(small, transferred):
    path, ckpt = transferred
    t = load_transfer(path)
    bb = load_checkpoint(small["backbone"])
    assert t["backbone"]["state_sha256"] == bb["state_sha256"] == state_checksum(bb["state_dict"])
    assert t["epoch"] == 2 and [h["epoch"] for h in t["history"]] == [1, 2]
    assert [c["op"] for c in t["connectors"]] == ["layer2.0.relu_1", "layer3.0.relu_1", "flatten"]
    # the formats the backbone artifact carries the connectors in
    own = artifact.load(small["artifact"])
    assert [c["frac"] for c in t["connectors"][:2]] == [own.node("layer2.0.add").frac, own.node("layer3.0.add").frac]
    assert t["connectors"][2]["frac"] is None
    assert not any(k.startswith("backbone.") for k in t["state_dict"])       # the frozen backbone is not copied
    m = t["memory"]
    assert m["saved_activation_bytes"] > 0 and m["trainable_params"] == sum(
        v.numel() for k, v in t["state_dict"].items() if k.startswith(("repnet.", "classifier.")) and v.is_floating_point()
        and "running" not in k)


def test_resume_continues_and_refuses_other_settings(small):
    out = small["dir"] / "resume.pt"
    one = transfer(small_config(small, method="last", epochs=1, out=str(out)))
    two = transfer(small_config(small, method="last", epochs=2, out=str(out), resume=True))
    assert [h["epoch"] for h in two["history"]] == [1, 2] and two["history"][0] == one["history"][0]
    with pytest.raises(CheckpointError, match="other settings.*lr"):
        transfer(small_config(small, method="last", epochs=3, out=str(out), resume=True, lr=0.5))


def test_export_keeps_the_backbone_layers_byte_identical(small, transferred, tmp_path, fm_test):
    path, _ = transferred
    t = load_transfer(path)
    art = export_transferred(t, artifact=small["artifact"])
    out = artifact.save(art, tmp_path / "t.pesto")
    own, new = tconv_layers(small["artifact"].read_bytes()), tconv_layers(out.read_bytes())
    assert len(own) == 18 and own == new                  # codes, indexers, output stages, formats: every byte
    # re-exporting the backbone with the options recorded at training gives the same layers
    again = export_transferred(t)
    assert tconv_layers(artifact.to_bytes(again)) == own
    assert art.meta["num_classes"] == 5 and art.output == "classifier"
    assert {n.op for n in art.nodes if n.name.startswith(("rep", "conn"))} <= {"conv", "add", "quantize",
                                                                              "dequantize", "avgpool", "flatten"}
    # the integer pipeline against the torch model (its connectors quantize as the artifact does)
    net = build_net(t, load_backbone(t))
    with torch.no_grad():
        for b in net.repnet.blocks:       # a Rep-Net that matters, not one still at zero
            b.bn2.weight.fill_(0.7)
    from pesto.transfer.deploy import backbone_values, graft
    values = backbone_values(net.backbone, net.input_shape, art.meta["input"]["mean"], art.meta["input"]["std"])
    live = graft(artifact.load(small["artifact"]), values, net)
    v = verify(net, live, crop(fm_test[0][:48]))
    assert v["top1_agreement"] >= 95 and v["max_abs_logit_error"] < 0.01 * v["logit_range"]


def test_cli_transfer_and_export(small, tmp_path, capsys):
    out, art = tmp_path / "cli.pt", tmp_path / "cli.pesto"
    rc = main(["transfer", str(small["backbone"]), "--data", "fashion-mnist", "--classes", "5-9", "--resize",
               "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "8", "--subset", "64", "--test-subset", "32",
               "--calib-data", str(small["calib"]), "--calib-images", "64", "--design", "up", "--no-progress",
               "--out", str(out), "--summary-json", str(tmp_path / "s.json")])
    assert rc == 0
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["design"] == "up" and s["saved_activation_bytes"] > 0
    assert main(["export-to-fpga", str(out), "-o", str(art), "--backbone-artifact", str(small["artifact"]),
                 "--no-verify"]) == 0
    assert "byte for byte" in capsys.readouterr().out
    assert tconv_layers(art.read_bytes()) == tconv_layers(small["artifact"].read_bytes())


# -- bad input ---------------------------------------------------------------------------
def test_dataset_that_does_not_fit_the_backbone(small):
    with pytest.raises(DatasetError, match=r"28x28, the backbone resnet20 takes 12x12; pass --resize"):
        transfer(small_config(small, resize=False))
    with pytest.raises(DatasetError, match="cifar10 images have 3 channel.*takes 1"):
        transfer(small_config(small, data="cifar10", classes=None))


def test_checkpoint_paired_with_another_backbone(small, transferred, tmp_path):
    other = save_small_checkpoint(tmp_path / "other.pt", seed=1)
    path, _ = transferred
    with pytest.raises(CheckpointError, match="trained on the backbone with weights .* pass the backbone it was"):
        export_transferred(path, backbone=str(other))
    rc = main(["export-to-fpga", str(path), "-o", str(tmp_path / "x.pesto"), "--backbone", str(other)])
    assert rc == 1 and not (tmp_path / "x.pesto").exists()
    # resuming on another backbone is refused the same way
    t = tmp_path / "r.pt"
    transfer(small_config(small, method="last", out=str(t)))
    with pytest.raises(CheckpointError, match="trained on the backbone"):
        transfer(small_config(small, method="last", out=str(t), resume=True, backbone=str(other), epochs=2))


def test_bad_options_are_clear_errors(small, capsys):
    with pytest.raises(ConfigError, match="unknown design 'zigzag'"):
        small_config(small, design="zigzag")
    rc = main(["transfer", str(small["backbone"]), "--data", "fashion-mnist", "--design", "zigzag", "--out", "x.pt"])
    assert rc == 2 and "unknown design 'zigzag'" in capsys.readouterr().err
    bb = str(small["backbone"])
    for extra, msg in ((["--epochs", "0"], "argument --epochs: expected an integer >= 1"),
                       (["--lr", "nan"], "argument --lr: expected a finite number"),
                       (["--width", "9"], "argument --width"),
                       (["--backbone-artifact", "missing.pesto"], "missing.pesto' does not exist")):
        rc = main(["transfer", bb, "--data", "digits", "--out", "x.pt", *extra])
        assert rc == 2 and msg in capsys.readouterr().err, extra
    rc = main(["transfer", "missing.pt", "--data", "digits", "--out", "x.pt"])
    assert rc == 2 and "missing.pt' does not exist" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="changes the backbone's weights"):
        export_transferred({"method": "full"})


def test_digits_split_is_fixed_and_resized():
    from pesto.data import load_splits
    tr, te = load_splits("digits", input_size=SIZE)
    tr2, te2 = load_splits("digits", input_size=SIZE)
    assert (len(tr), len(te)) == (1347, 450) and torch.equal(te.labels, te2.labels)
    assert tr.images.shape[1:] == (1, SIZE, SIZE) and tr.images.dtype == torch.uint8
    assert sorted(np.bincount(np.concatenate([tr.labels.numpy(), te.labels.numpy()]))) == sorted(
        [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])


@pytest.mark.parametrize("design", ["none", "down", "up", "dual-all"])
def test_every_design_deploys_as_it_trains(small, fm_test, design):
    """The graft of each design (dual: above) computes what the torch model computes, within the
    integer pipeline's rounding, and keeps the backbone's layers."""
    from pesto.transfer import TransferNet
    from pesto.transfer.connectors import backbone_ops
    from pesto.transfer.deploy import backbone_formats, backbone_values, connector_formats, graft
    from pesto.train.checkpoint import model_from_checkpoint
    own = artifact.load(small["artifact"])
    torch.manual_seed(5)
    net = TransferNet(model_from_checkpoint(load_checkpoint(small["backbone"])), 5, "repnet", design,
                      input_shape=(1, SIZE, SIZE))
    with torch.no_grad():
        for b in net.repnet.blocks:
            b.bn2.weight.uniform_(0.3, 1.0)
    values = backbone_values(net.backbone, net.input_shape, own.meta["input"]["mean"], own.meta["input"]["std"])
    net.set_formats(connector_formats(own, values, net.connectors),
                    backbone_formats(own, values, backbone_ops(net.backbone, net.input_shape)))
    art = graft(own, values, net)
    assert tconv_layers(artifact.to_bytes(art)) == tconv_layers(small["artifact"].read_bytes())
    adds = [n for n in art.nodes if n.name.startswith("conn") and n.op == "add"]
    assert len(adds) == (1 if design == "none" else len(net.connectors))
    v = verify(net, art, crop(fm_test[0][:32]))
    assert v["top1_agreement"] >= 95 and v["max_abs_logit_error"] < 0.01 * v["logit_range"]
