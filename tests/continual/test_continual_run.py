"""The continual loop on real Fashion-MNIST: exact resume between tasks, what PTLF freezes, the
checkpoint as a `pesto train --init` source, DDP with two gloo processes, bad input."""

import json
import os
import re
import subprocess
import sys

import pytest
import torch

from pesto.cli import main as pesto_main
from pesto.continual import ContinualConfig, load_continual, run_continual
from pesto.errors import CheckpointError, ConfigError

pytestmark = pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"),
                                reason="dataset-fashion-mnist not installed")

SMALL = dict(tasks="0,1,2,3,4/5,6,7,8,9", steps_per_task=3, batch_size=16, buffer_size=32, proj_dim=32,
             train_per_task=96, bank_per_task=48, test_per_task=48, progress=False, threads=1)


def test_resume_between_tasks_is_bit_identical(tmp_path):
    full = run_continual(ContinualConfig(method="ptlf", out=str(tmp_path / "full.pt"), **SMALL))
    part = run_continual(ContinualConfig(method="ptlf", out=str(tmp_path / "part.pt"), stop_after=1, **SMALL))
    assert part["completed"] == 1 and len(part["acc"]) == 1 and "accuracy" not in part
    resumed = run_continual(ContinualConfig(method="ptlf", out=str(tmp_path / "part.pt"), resume=True, **SMALL))
    assert resumed["completed"] == 2
    assert resumed["acc"] == full["acc"]                                 # the accuracy matrix, exactly
    assert resumed["decisions"] == full["decisions"]                     # r_l and the freezing steps too
    for k in ("bwd_flops", "saved_bytes_mean", "loss"):
        assert [c[k] for c in resumed["costs"]] == [c[k] for c in full["costs"]]
    a, b = load_continual(tmp_path / "full.pt"), load_continual(tmp_path / "part.pt")
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    for key in a["continual"]["heads"]:
        assert torch.equal(a["continual"]["heads"][key], b["continual"]["heads"][key]), key
    assert all(torch.equal(x, y) for x, y in zip(a["continual"]["buffer"]["per_task"], b["continual"]["buffer"]["per_task"]))
    # what the run did: nothing frozen in task 1, floor(0.4 * 19) = 7 layers by the end of task 2
    d = full["decisions"]
    assert d[0]["final_frozen"] == [] and len(d[1]["final_frozen"]) == 7
    assert all(0.0 <= r <= 1.0 for r in d[1]["scores"])
    assert sorted(d[1]["final_frozen"]) == sorted(sorted(range(19), key=lambda i: (-d[1]["scores"][i], i))[:7])
    assert full["costs"][1]["bwd_flops"] < full["costs"][0]["bwd_flops"]
    assert len(a["continual"]["buffer"]["per_task"]) == 2 and all(len(v) == 16 for v in a["continual"]["buffer"]["per_task"])
    assert "fc.weight" not in a["state_dict"] and a["model"]["name"] == "resnet20"
    # resuming with another setting is refused
    with pytest.raises(CheckpointError, match=r"freeze_ratio 0.4 -> 0.3"):
        run_continual(ContinualConfig(method="ptlf", out=str(tmp_path / "part.pt"), resume=True,
                                      **{**SMALL, "freeze_ratio": 0.3}))


def test_train_init_accepts_the_backbone_only_checkpoint(tmp_path, capsys):
    from pesto.train.checkpoint import build_from_config
    from pesto.train.loop import _init_from
    path = tmp_path / "lump.pt"
    run_continual(ContinualConfig(method="lump", learner="barlowtwins", out=str(path), stop_after=1, **SMALL))
    src = load_continual(path)
    model = build_from_config(src["model"], {"mode": "wpc", "cg": 16, "keep_first_last": True})
    fc_before = model.fc.weight.detach().clone()
    report = _init_from(model, str(path))
    assert report["fresh"] == ["fc.weight", "fc.bias"] and report["ignored"] == []
    assert len(report["copied"]) == len(src["state_dict"])
    assert torch.equal(model.fc.weight, fc_before)
    assert torch.equal(model.layer2[0].conv1.parametrizations.weight.original, src["state_dict"]["layer2.0.conv1.weight"])
    with pytest.raises(CheckpointError, match="no weights for"):
        _init_from(build_from_config({**src["model"], "name": "resnet32"}, {"mode": "fp"}), str(path))
    rc = pesto_main(["train", "--recipe", "fmnist-quick", "--mode", "wpc", "--init", str(path), "--epochs", "1",
                     "--steps-per-epoch", "2", "--batch-size", "16", "--subset", "64", "--test-subset", "64",
                     "--no-progress", "--threads", "1", "--out", str(tmp_path / "wpc.pt")])
    assert rc == 0
    out = capsys.readouterr()
    assert re.search(r"copied \d+ tensors; freshly initialised fc.weight, fc.bias \(the checkpoint has no classifier\)",
                     out.out + out.err)


def test_ddp_gloo_two_processes_with_freezing(tmp_path):
    out = tmp_path / "ddp.pt"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
                        "-m", "pesto.continual.cli", "--method", "ptlf", "--device", "cpu", "--tasks",
                        "0,1,2,3,4/5,6,7,8,9", "--steps-per-task", "4", "--batch-size", "8", "--buffer-size", "16",
                        "--proj-dim", "16", "--train-per-task", "64", "--bank-per-task", "32", "--test-per-task", "32",
                        "--no-progress", "--out", str(out), "--summary-json", str(tmp_path / "s.json")],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "world size 2" in r.stdout + r.stderr
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["world_size"] == 2 and s["completed"] == 2
    frozen_at = s["decisions"][1]["frozen_at"]
    assert len(s["decisions"][1]["final_frozen"]) == 7
    assert any(step < 4 for step, *_ in frozen_at)      # the trainable set changed while DDP trained on
    assert load_continual(out)["epoch"] == 2


@pytest.mark.parametrize("argv,msg", [
    (["--tasks", "0,1/1,2,3,4,5,6,7,8,9"], r"class 1 appears in tasks 1 and 2: tasks must not overlap"),
    (["--tasks", "0,1/2,3"], r"classes \[4, 5, 6, 7, 8, 9\] are in no task"),
    (["--freeze-ratio", "1.0"], r"freezing ratio must be in \[0, 1\)"),
    (["--freeze-ratio", "-0.2"], r"freezing ratio must be in \[0, 1\)"),
    (["--buffer-size", "64", "--batch-size", "128"], r"buffer size 64 is smaller than one batch \(128\)"),
    (["--learner", "byol"], r"unknown learner 'byol'; choose one of simsiam, barlowtwins"),
    (["--method", "ewc"], r"unknown method 'ewc'"),
])
def test_bad_input_is_a_clear_error(argv, msg, tmp_path, capsys):
    assert pesto_main(["continual", *argv, "--out", str(tmp_path / "x.pt"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pesto: error:") and re.search(msg, err) and "Traceback" not in err
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize("argv,msg", [
    (["--steps-per-task", "0"], r"argument --steps-per-task: expected an integer >= 1, got 0"),
    (["--lr", "nan"], r"argument --lr: expected a finite number > 0, got 'nan'"),
    (["--energy", "1.5"], r"argument --energy: expected a finite number > 0 and <= 1, got '1.5'"),
])
def test_out_of_range_options_are_usage_errors(argv, msg, tmp_path, capsys):
    assert pesto_main(["continual", *argv, "--out", str(tmp_path / "x.pt"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert re.search(msg, err) and "Traceback" not in err
    assert not (tmp_path / "x.pt").exists()


def test_cli_exits_non_zero_on_bad_input():
    r = subprocess.run([sys.executable, "-m", "pesto.cli", "continual", "--learner", "byol"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "unknown learner 'byol'" in r.stderr and "Traceback" not in r.stderr
    with pytest.raises(ConfigError, match="unknown learner"):
        ContinualConfig(learner="moco")
