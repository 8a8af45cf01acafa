"""Real-data training: the loss falls and group sparsity appears; resume after a kill; DDP (gloo)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from pesto.cli import main as pesto_main
from pesto.errors import CheckpointError, ConfigError
from pesto.train.checkpoint import load_checkpoint, model_from_checkpoint
from pesto.train.loop import TrainConfig, train

pytestmark = pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"),
                                reason="dataset-fashion-mnist not installed")

SMALL = dict(dataset="fashion-mnist", model="resnet20", batch_size=32, subset=1024, test_subset=256,
             augment=False, progress=False, lr=0.1)


def test_wpc_run_learns_and_becomes_group_sparse(tmp_path):
    # a strong lambda so that a few dozen steps show what a long run shows slowly
    cfg = TrainConfig(mode="wpc", epochs=2, steps_per_epoch=24, lam=0.01, a=1.0, cg=4,
                      out=str(tmp_path / "wpc.pt"), plots=str(tmp_path / "plots"), **SMALL)
    ckpt = train(cfg)
    h = ckpt["history"]
    assert len(h) == 2 and ckpt["epoch"] == 2
    assert h[1]["train_loss"] < h[0]["train_loss"]          # cross-entropy falls
    assert h[1]["train_acc"] > 35.0                         # well above chance (10 %); the test
    # accuracy of 48 steps at lr 0.1 swings with the batch-norm statistics, so it is not asserted
    assert h[1]["group_sparsity"] > 0.02                     # whole PE groups became zero
    assert h[1]["compression_rate"] > 16.0
    deltas = [v["delta"] for v in h[1]["layers"].values()]
    assert all(d > 0 for d in deltas)
    assert {p.name for p in (tmp_path / "plots").iterdir()} == {"wpc_sparsity.png", "wpc_kernels.png", "wpc_hist.png"}
    model = model_from_checkpoint(load_checkpoint(tmp_path / "wpc.pt"))
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


def test_float_prune_run_reaches_exact_zero_groups(tmp_path):
    # proximal group lasso: float groups become exactly zero (subgradient steps never get there)
    cfg = TrainConfig(mode="prune", epochs=1, steps_per_epoch=24, lam=0.2, cg=4, out=None, **SMALL)
    h = train(cfg)["history"][-1]
    assert h["group_sparsity"] > 0.1 and h["compression_rate"] > 1.1
    assert h["train_acc"] > 20.0


def test_killed_run_resumes_where_it_stopped(tmp_path):
    out = tmp_path / "run.pt"
    args = [sys.executable, "-m", "pesto.train.cli", "--recipe", "fmnist-quick", "--mode", "tern",
            "--epochs", "30", "--steps-per-epoch", "2", "--batch-size", "16", "--subset", "256",
            "--test-subset", "64", "--no-progress", "--threads", "1", "--out", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not out.exists():
            time.sleep(0.2)
        assert out.exists(), "no checkpoint appeared"
        proc.send_signal(signal.SIGKILL)  # killed mid-run, no clean-up
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    done = load_checkpoint(out)
    first = done["epoch"]
    assert 1 <= first < 30
    cfg = TrainConfig(mode="tern", epochs=first + 1, steps_per_epoch=2, batch_size=16, subset=256,
                      test_subset=64, augment=False, progress=False, out=str(out), resume=True,
                      lr=0.1, lam=1e-3, milestones=[])
    ckpt = train(cfg)
    assert ckpt["epoch"] == first + 1
    assert ckpt["history"][:first] == done["history"]
    assert ckpt["history"][-1]["epoch"] == first + 1
    # resuming with other hyper-parameters is refused: one checkpoint, one experiment
    with pytest.raises(CheckpointError, match=r"lam 0.001 -> 0.005; subset 256 -> 128"):
        train(TrainConfig(**{**cfg.__dict__, "epochs": first + 2, "lam": 5e-3, "subset": 128}))
    # resuming with another architecture is refused
    with pytest.raises(Exception, match="this run asks for resnet32"):
        train(TrainConfig(model="resnet32", mode="tern", epochs=first + 2, out=str(out), resume=True,
                          progress=False, subset=64, test_subset=64, batch_size=16))


def test_ddp_gloo_two_processes(tmp_path):
    out = tmp_path / "ddp.pt"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                        "--standalone", "-m", "pesto.train.cli", "--recipe", "fmnist-quick",
                        "--mode", "wpc", "--device", "cpu", "--epochs", "1", "--steps-per-epoch", "3",
                        "--batch-size", "16", "--subset", "256", "--test-subset", "64", "--no-progress",
                        "--out", str(out), "--summary-json", str(tmp_path / "s.json")],
                       capture_output=True, text=True, timeout=240, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    ckpt = load_checkpoint(out)
    assert ckpt["epoch"] == 1 and ckpt["history"][0]["steps"] == 3
    assert json.loads((tmp_path / "s.json").read_text())["quant"]["mode"] == "wpc"
    assert "world size 2" in r.stdout + r.stderr


def test_bad_options_are_clear_errors(tmp_path, capsys):
    with pytest.raises(ConfigError, match="unknown mode 'int4'"):
        TrainConfig(mode="int4")
    with pytest.raises(ConfigError, match="unknown model 'vgg'"):
        TrainConfig(model="vgg", out=None, progress=False, subset=64, test_subset=64, batch_size=16)
    with pytest.raises(ConfigError, match="larger than the layer's 16 input channels"):
        train(TrainConfig(mode="wpc", cg_overrides={"layer1.0.conv1": 32}, out=None, progress=False,
                          subset=64, test_subset=64, batch_size=16))
    assert pesto_main(["train", "--recipe", "nope"]) == 2          # usage errors exit 2 (docs/robustness.md)
    assert "argument --recipe: invalid choice: 'nope'" in capsys.readouterr().err
    assert pesto_main(["train", "--mode", "int4"]) == 2
    assert pesto_main(["train", "--cg-override", "layer1"]) == 2
