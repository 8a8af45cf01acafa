"""AST-GC on real Fashion-MNIST images: the command, exact resume mid-cycle, DDP (gloo, two
processes), joint training and the N:M patterns reaching their masks."""

import json
import os
import subprocess
import sys

import pytest
import torch

from pesto.cli import main as pesto_main
from pesto.prune.subnets import SubnetMasks, select_subnet
from pesto.train import loop
from pesto.train.checkpoint import load_checkpoint, model_from_checkpoint
from pesto.train.loop import TrainConfig, train

pytestmark = pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"),
                                reason="dataset-fashion-mnist not installed")

TINY = dict(dataset="fashion-mnist", model="resnet20", batch_size=16, subset=256, test_subset=64, augment=False,
            progress=False, lr=0.05, cg=8, threads=1)


def test_ast_command_trains_three_subnets_to_their_masks(tmp_path, capsys):
    out = tmp_path / "ast.pt"
    rc = pesto_main(["train", "--recipe", "fmnist-quick", "--mode", "ast", "--subnets", "0.3,0.5,0.7",
                     "--epochs", "2", "--steps-per-epoch", "6", "--batch-size", "16", "--subset", "256",
                     "--test-subset", "64", "--cg", "8", "--prune-every", "2", "--threads", "1", "--no-progress",
                     "--out", str(out), "--plots", str(tmp_path / "plots"), "--summary-json", str(tmp_path / "s.json")])
    assert rc == 0
    text = capsys.readouterr()
    assert "3 sub-nets s30, s50, s70 (alternating, GC on" in text.out + text.err
    ckpt = load_checkpoint(out)
    last = ckpt["history"][-1]
    assert [s["name"] for s in last["subnets"]] == ["s30", "s50", "s70"]
    for s in last["subnets"]:   # the final update (step >= 0.75 * 12) reaches every target exactly
        assert s["mask_sparsity"] == pytest.approx(s["target"], abs=1e-3)
        assert s["group_sparsity"] >= s["mask_sparsity"] - 1e-9 and s["steps"] == 4
    assert last["gc"]["pairs"] == 4 and last["gc"]["enabled"]   # steps 7, 8, 10, 11: positions 1 and 2
    model = model_from_checkpoint(ckpt)
    masks = SubnetMasks(model)
    assert [round(masks.group_sparsity(k), 2) for k in range(3)] == [0.3, 0.5, 0.7]
    assert sum(masks.overlap(0, 2).values()) > 0
    select_subnet(model, "s70")
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
    summary = json.loads((tmp_path / "s.json").read_text())
    assert [s["name"] for s in summary["subnets"]] == ["s30", "s50", "s70"]
    assert {p.name for p in (tmp_path / "plots").iterdir()} >= {
        "ast_sparsity.png", "ast_subnet_sparsity.png", "ast_overlap.png", "ast_conflicts.png"}


def _strip(history):
    return [{k: v for k, v in h.items() if k not in ("time_s", "train_s")} for h in history]


def test_resume_mid_cycle_is_bit_identical(tmp_path, monkeypatch):
    # 3 epochs of 4 steps with K = 3: every epoch ends mid-cycle, inside a GC inner group, between
    # two mask updates (every 2 steps)
    base = dict(TINY, mode="ast", subnets=[0.3, 0.5, 0.7], epochs=3, steps_per_epoch=4, prune_every=2,
                prune_end=0.9, momentum=0.9, weight_decay=1e-3)
    full = train(TrainConfig(**base, out=str(tmp_path / "full.pt")))
    saves = []
    real_save = loop.save_checkpoint

    def save_then_die(*a, **kw):
        saves.append(real_save(*a, **kw))
        if len(saves) == 1:
            raise KeyboardInterrupt("killed after epoch 1")
        return saves[-1]

    monkeypatch.setattr(loop, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**base, out=str(tmp_path / "cut.pt")))
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    assert load_checkpoint(tmp_path / "cut.pt")["epoch"] == 1
    resumed = train(TrainConfig(**base, out=str(tmp_path / "cut.pt"), resume=True))
    assert resumed["epoch"] == 3
    a, b = full["state_dict"], resumed["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _strip(full["history"]) == _strip(resumed["history"])
    ma, mb = full["method"], resumed["method"]
    assert ma["last_period"] == mb["last_period"] and ma["trained"] == mb["trained"]
    assert torch.equal(ma["gc_trace"], mb["gc_trace"]) and torch.equal(ma["mask_trace"], mb["mask_trace"])
    assert all(torch.equal(ma["prev"][k], mb["prev"][k]) for k in ma["prev"])
    sa, sb = full["optimizer"]["state"], resumed["optimizer"]["state"]
    assert all(torch.equal(sa[i]["momentum_buffer"], sb[i]["momentum_buffer"]) for i in sa)
    with pytest.raises(Exception, match="epochs 3 -> 4"):   # the mask schedule spans the run
        train(TrainConfig(**{**base, "epochs": 4}, out=str(tmp_path / "cut.pt"), resume=True))


def test_joint_training_and_nm_patterns(tmp_path):
    joint = train(TrainConfig(**TINY, mode="ast", subnets=[0.3, 0.6], joint=True, epochs=1, steps_per_epoch=4,
                              prune_every=1, out=None))
    last = joint["history"][-1]
    assert [s["steps"] for s in last["subnets"]] == [4, 4] and last["gc"]["pairs"] == 0
    assert [round(s["mask_sparsity"], 3) for s in last["subnets"]] == [0.3, 0.6]
    nm = train(TrainConfig(**{**TINY, "cg": 4}, mode="ast", pattern="nm", subnets=["2:4", "1:4"], epochs=1,
                           steps_per_epoch=6, prune_every=1, out=None))
    model = model_from_checkpoint(nm)
    masks = SubnetMasks(model)
    for name, m in masks.layers.items():   # every output channel keeps N of every 4 PE groups
        for k, n in ((0, 2), (1, 1)):
            assert (m[k].reshape(m.shape[1], -1, 4).sum(-1) == n).all(), name
    el = train(TrainConfig(**TINY, mode="ast", pattern="nm-element", subnets=["2:4", "1:8"], epochs=1,
                           steps_per_epoch=6, prune_every=1, out=None))
    masks = SubnetMasks(model_from_checkpoint(el))
    for name, m in masks.layers.items():
        g = masks.groupers[name]
        assert m.shape[1:] == model_from_checkpoint(el).get_submodule(name).weight.shape
        assert (g.gemm_matrix(m[0]).reshape(m.shape[1], -1, 4).sum(-1) == 2).all()
        assert (g.gemm_matrix(m[1]).reshape(m.shape[1], -1, 8).sum(-1) == 1).all()


def test_ast_ddp_gloo_two_processes(tmp_path):
    out = tmp_path / "ddp.pt"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
                        "-m", "pesto.train.cli", "--recipe", "fmnist-quick", "--mode", "ast", "--subnets", "0.3,0.6",
                        "--device", "cpu", "--epochs", "1", "--steps-per-epoch", "6", "--batch-size", "8",
                        "--subset", "256", "--test-subset", "64", "--cg", "8", "--prune-every", "2",
                        "--no-progress", "--out", str(out)],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    ckpt = load_checkpoint(out)
    last = ckpt["history"][0]
    assert last["world_size"] == 2 and last["steps"] == 6 and last["gc"]["pairs"] == 3
    assert [round(s["mask_sparsity"], 3) for s in last["subnets"]] == [0.3, 0.6]
    assert "world size 2" in r.stdout + r.stderr
