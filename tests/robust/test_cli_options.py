"""Every `pesto` option validated: each case issue 16 listed (and its neighbours) is a clear
error of the project's type with the documented exit status -- 2 for a usage error (found from
the command line alone), 1 for a runtime error (found while working) -- and no traceback."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from tiny import tiny_artifact

from pesto import artifact as A
from pesto.cli import main

USAGE, RUNTIME = 2, 1


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "empty").mkdir()
    (d / "folder").mkdir()
    (d / "folder" / "README").write_text("no dataset here")
    (d / "text.pt").write_text("not a checkpoint")
    (d / "bad.npy").write_text("not numpy")
    np.save(d / "calib.npy", np.random.default_rng(0).integers(0, 256, (8, 1, 8, 8), dtype=np.uint8))
    A.save(tiny_artifact(), d / "tiny.pesto")
    (d / "garbage.pesto").write_bytes(b"\0" * 100)
    return d


def run(argv, capsys):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


TRAIN = [
    (["--threads", "-1"], "argument --threads: expected an integer >= 1, got -1"),
    (["--momentum", "-5"], r"argument --momentum: expected a finite number >= 0 and < 1, got '-5'"),
    (["--workers", "-1"], "argument --workers: expected an integer >= 0, got -1"),
    (["--device", "cuda:7" if torch.cuda.is_available() else "cuda"], "CUDA device"),
    (["--device", "tpu"], "not a torch device"),
    (["--steps-per-epoch", "0"], "argument --steps-per-epoch: expected an integer >= 1, got 0"),
    (["--steps-per-epoch", "-1"], "argument --steps-per-epoch: expected an integer >= 1, got -1"),
    (["--subset", "64", "--batch-size", "128"], "subset 64 is smaller than one batch"),
    (["--lr", "nan"], "argument --lr: expected a finite number > 0, got 'nan'"),
    (["--lr", "inf"], "argument --lr: expected a finite number > 0, got 'inf'"),
    (["--lr", "0"], "argument --lr"),
    (["--epochs", "0"], "argument --epochs"),
    (["--batch-size", "0"], "argument --batch-size"),
    (["--cg", "0"], "argument --cg"),
    (["--cg-override", "layer1.0.conv1=0"], "CG >= 1"),
    (["--milestones", "5,3"], "increasing epochs"),
    (["--gamma", "0"], "argument --gamma"),
    (["--gamma", "2"], "argument --gamma"),
    (["--lambda", "-1"], "argument --lambda"),
    (["--a", "0"], "argument --a"),
    (["--seed", "-1"], "argument --seed"),
    (["--recipe", "nope"], "argument --recipe: invalid choice: 'nope'"),
    (["--model", "vgg"], "argument --model: .vgg.: choose one of"),
    (["--dataset", "mnist"], "argument --dataset: invalid choice"),
    (["--data-root", "{d}/missing"], "argument --data-root: '.*missing' does not exist"),
    (["--data-root", "{d}/empty"], "argument --data-root: '.*empty' is empty"),
    (["--data-root", "{d}/text.pt"], "is not a folder"),
    (["--out", "{d}/folder"], "argument --out: '.*folder' is a folder; give a file name"),
    (["--init", "{d}/missing.pt"], "argument --init: '.*missing.pt' does not exist"),
    (["--plots", "{d}/text.pt"], "is a file; give a folder"),
]


@pytest.mark.parametrize("args,match", TRAIN, ids=[" ".join(a) for a, _ in TRAIN])
def test_train_usage_errors(files, capsys, args, match):
    code, err = run(["train"] + [a.format(d=files) for a in args], capsys)
    assert code == USAGE
    assert __import__("re").search(match, err), err


def test_train_runtime_errors_and_torchrun_entry(files, capsys, tmp_path):
    from pesto.train.cli import main as train_main
    assert train_main(["--threads", "0"]) == USAGE
    capsys.readouterr()
    code, err = run(["train", "--init", files / "text.pt", "--out", tmp_path / "x.pt", "--subset", "128",
                     "--test-subset", "64", "--epochs", "1", "--no-progress"], capsys)
    assert code == RUNTIME and "corrupt, truncated or not a PyTorch file" in err
    assert not (tmp_path / "x.pt").exists() and list(tmp_path.iterdir()) == []   # no lock left either


EXPORT = [
    (["random", "--arch", "resnet20", "--calib-images", "-1"], "argument --calib-images: expected an integer >= 1, got -1"),
    (["random", "--arch", "resnet20", "--calib-images", "0"], "argument --calib-images"),
    (["random", "--arch", "resnet20", "--act-bits", "17"], "argument --act-bits"),
    (["random", "--arch", "resnet20", "--headroom-bits", "-1"], "argument --headroom-bits"),
    (["random", "--arch", "resnet20", "--frac-bits", "2000"], "argument --frac-bits"),
    (["random", "--arch", "resnet20", "--cg", "0"], "argument --cg"),
    (["random", "--arch", "resnet20", "--mean", "nan", "--std", "1"], "argument --mean"),
    (["random", "--arch", "resnet20", "--mean", "0.5", "--std", "0"], "argument --std"),
    (["random", "--arch", "resnet20", "--mean", "0.5"], "give --mean and --std together"),
    (["random", "--arch", "resnet20", "--mean", "0.5", "--std", "0.3", "--normalisation", "none"], "not both"),
    (["random", "--arch", "resnet20", "--min-agreement", "150"], "argument --min-agreement"),
    (["random", "--arch", "resnet20", "--verify-images", "0"], "argument --verify-images"),
    (["random", "--arch", "vgg"], "--arch 'vgg': unknown"),
    (["random"], "`random` needs --arch"),
    (["{d}/missing.pt"], "missing.pt does not exist"),
    (["random", "--arch", "resnet20", "--calib-data", "{d}/missing.npy"], "--calib-data"),
    (["random", "--arch", "resnet20", "--onnx", "{d}/x.pesto"], "must be different files"),
]


@pytest.mark.parametrize("args,match", EXPORT, ids=[" ".join(a) for a, _ in EXPORT])
def test_export_usage_errors(files, capsys, args, match):
    out = ["-o", files / "x.pesto"] if "-o" not in args else []
    code, err = run(["export-to-fpga"] + [a.format(d=files) for a in args] + out, capsys)
    assert code == USAGE and __import__("re").search(match, err), err
    code, err = run(["export-to-fpga", "random", "--arch", "resnet20", "-o", files / "folder"], capsys)
    assert code == USAGE and "is a folder" in err


def _evil(path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    torch.save({"format": "pesto-checkpoint", "x": Evil()}, path)


def test_export_runtime_errors(files, capsys, tmp_path):
    small = ["--arch", "resnet20", "--input-size", "8", "--calib-data", files / "calib.npy", "--calib-images", "8",
             "--verify-images", "8", "-q", "-o", tmp_path / "out.pesto"]
    with pytest.warns(UserWarning, match="ternarizing"):   # the random model, before its data is read
        code, err = run(["export-to-fpga", "random", "--normalisation", "none", "--calib-data", files / "bad.npy"]
                        + small[:4] + small[6:], capsys)
    assert code == RUNTIME and "not a readable .npy array" in err
    plain = tmp_path / "plain.pt"
    from pesto.models import build_model
    torch.save(build_model("resnet20", in_channels=1, num_classes=10, input_size=8).state_dict(), plain)
    with pytest.warns(UserWarning):
        code, err = run(["export-to-fpga", plain] + small, capsys)
    assert code == RUNTIME and "carries no input normalisation" in err and "--normalisation none" in err
    _evil(tmp_path / "evil.pt")
    code, err = run(["export-to-fpga", tmp_path / "evil.pt"] + small, capsys)
    assert code == RUNTIME and "was refused: it holds Python objects" in err and "posix.system" in err
    assert "Weights only load failed" in err and "corrupt" not in err     # torch's explanation, in full
    assert not (tmp_path / "out.pesto").exists()


def test_export_below_the_threshold_exits_1_and_keeps_the_previous_artifact(files, capsys, tmp_path):
    out = tmp_path / "model.pesto"
    out.write_bytes((files / "tiny.pesto").read_bytes())
    before = out.read_bytes()
    argv = ["export-to-fpga", "random", "--arch", "resnet20", "--input-size", "8", "--normalisation", "none",
            "--calib-data", files / "calib.npy", "--calib-images", "8", "--verify-images", "8", "-q", "-o", out]
    with pytest.warns(UserWarning):
        code, err = run(argv + ["--act-bits", "1"], capsys)
    assert code == RUNTIME and "agrees with the float model on only" in err and "threshold 90 %" in err
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["model.pesto"]


CHECKPOINT_FIELDS = [
    (lambda c: c["model"].update(in_channels="1"), "field model.in_channels must be a positive integer, got '1'"),
    (lambda c: c["quant"].update(cg=16.0), "field quant.cg must be a positive integer, got 16.0"),
    (lambda c: c["quant"].update(keep_first_last=1), "field quant.keep_first_last must be true or false"),
    (lambda c: c["data"].update(mean="0.3"), "field data.mean must be a non-empty list"),
    (lambda c: c.update(epoch=True), "field epoch must be a non-negative integer"),
    (lambda c: c.update(history={"a": 1}), "field history must be a list"),
    (lambda c: c.update(model=[1]), "field model must be a dict"),
]


@pytest.mark.parametrize("edit,match", CHECKPOINT_FIELDS, ids=[m.split(" must")[0] for _, m in CHECKPOINT_FIELDS])
def test_checkpoint_fields_of_the_wrong_type(tmp_path, edit, match):
    """One check (load_checkpoint) serves every command that reads checkpoints: train --resume and
    --init, export-to-fpga, demo --checkpoint, release."""
    from pesto.errors import CheckpointError
    from pesto.train.checkpoint import load_checkpoint, save_checkpoint
    from pesto.models import build_model
    path = tmp_path / "c.pt"
    ckpt = save_checkpoint(path, build_model("resnet20", in_channels=1, num_classes=10, input_size=8),
                           model_cfg={"name": "resnet20", "in_channels": 1, "num_classes": 10, "input_size": 8},
                           quant={"mode": "fp"}, data={"dataset": "fashion-mnist", "mean": [0.3], "std": [0.3]})
    edit(ckpt)
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path)


OTHERS = [
    (["hls", "-o", "{d}/h", "--layer", "table7", "--lanes", "0"], "argument --lanes: expected an integer >= 1, got 0"),
    (["hls", "-o", "{d}/h", "--layer", "table7", "--lanes", "5"], "LANES=5; the HLS engine takes 4, 8, 16 or 32"),
    (["hls", "-o", "{d}/h", "--layer", "table7", "--num-pe", "3"], "NUM_PE=3"),
    (["hls", "-o", "{d}/h", "{d}/tiny.pesto", "--images", "0"], "argument --images"),
    (["hls", "-o", "{d}/h", "--layer", '{{"out_channels": 0, "in_channels": 4, "in_h": 4, "in_w": 4}}'],
     "out_channels must be an integer >= 1"),
    (["hls", "-o", "{d}/h", "--layer", '{{"out_channels": 4, "in_channels": 4, "in_h": 4, "in_w": 4, "cg": 4, "relu": 0}}'],
     "relu must be true or false"),
    (["hls", "-o", "{d}/h", "{d}/missing.pesto"], "does not exist"),
    (["hls", "-o", "{d}/text.pt", "--layer", "table7"], "is a file; give a folder"),
    (["bench", "sweep", "--cg", "0"], "argument --cg: expected an integer >= 1, got 0"),
    (["bench", "sweep", "--sparsity", "1"], "argument --sparsity"),
    (["bench", "sweep", "--shape", "8x8x5x5"], "1x1 and 3x3"),
    (["bench", "sweep", "--shape", "8x8x3x3", "--cg", "16"], "larger than the 8 input channels"),
    (["bench", "sweep", "--clock-mhz", "0"], "argument --clock-mhz"),
    (["bench", "table7", "--input-hw", "0", "8", "8"], "argument --input-hw"),
    (["bench", "artifact", "{d}/missing.pesto"], "does not exist"),
    (["bench", "artifact", "{d}/tiny.pesto", "--images", "0"], "argument --images"),
    (["bench", "dynamic", "{d}/missing.pesto"], "does not exist"),
    (["bench", "dynamic", "--images", "0"], "argument --images"),
    (["bench", "dynamic", "--engine-images", "0"], "argument --engine-images"),
    (["bench", "dynamic", "--replot", "{d}/missing.json"], "does not exist"),
    (["bench", "dynamic", "--backend", "gpu"], "invalid choice: 'gpu'"),
    (["demo", "--dynamic-images", "-1"], "argument --dynamic-images"),
    (["demo", "--images", "-5"], r"argument --images: expected an integer >= 1 and <= 10000, got -5"),
    (["demo", "--images", "0"], "argument --images"),
    (["demo", "--images", "20000"], "argument --images"),
    (["demo", "--rtl-images", "-1"], "argument --rtl-images"),
    (["demo", "--profile-images", "-1"], "argument --profile-images"),
    (["demo", "--calibration-images", "-1"], "argument --calibration-images"),
    (["demo", "--clock-mhz", "-1"], "argument --clock-mhz"),
    (["demo", "--checkpoint", "{d}/missing.pt"], "does not exist"),
    (["demo", "--data-root", "{d}/empty"], "is empty"),
    (["hwspec", "--verilog", "{d}/folder"], "is a folder"),
    (["nope"], "invalid choice: 'nope'"),
    ([], "required: COMMAND"),
]


@pytest.mark.parametrize("argv,match", OTHERS, ids=[" ".join(a) for a, _ in OTHERS])
def test_other_usage_errors(files, capsys, argv, match):
    code, err = run([a.format(d=files) for a in argv], capsys)
    assert code == USAGE and __import__("re").search(match, err), err


def test_other_runtime_errors(files, capsys, tmp_path):
    code, err = run(["hls", files / "garbage.pesto", "-o", tmp_path / "h"], capsys)
    assert code == RUNTIME and "not a pesto artifact" in err
    code, err = run(["demo", "--checkpoint", files / "text.pt", "--rtl-images", "0", "--profile-images", "0", "-o", tmp_path / "d"], capsys)
    assert code == RUNTIME and "corrupt, truncated or not a PyTorch file" in err
    assert main(["--help"]) == 0


def test_exit_status_of_the_console_script(files):
    """The installed entry point, as a shell sees it."""
    r = subprocess.run([sys.executable, "-m", "pesto.cli", "hls", "-o", str(files / "h"), "--lanes", "0"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == USAGE and "usage:" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "pesto.cli", "hls", str(files / "garbage.pesto"), "-o",
                        str(files / "h")], capture_output=True, text=True, timeout=120)
    assert r.returncode == RUNTIME and r.stderr.startswith("pesto: error:") and "Traceback" not in r.stderr


def test_data_root_never_falls_back(files, monkeypatch):
    from pesto.data import load_splits
    from pesto.errors import DatasetError
    with pytest.raises(DatasetError, match="does not exist; pesto looks for fashion-mnist only there"):
        load_splits("fashion-mnist", root=files / "missing")
    with pytest.raises(DatasetError, match="is empty"):
        load_splits("fashion-mnist", root=files / "empty")
    with pytest.raises(DatasetError, match=f"looked in: {files / 'folder'}, {files / 'folder' / 'fashion-mnist'}\\."):
        load_splits("fashion-mnist", root=files / "folder")   # not there: no switch to the system copy
    monkeypatch.setenv("PESTO_DATA_ROOT", str(files / "empty"))
    with pytest.raises(DatasetError, match="looked in: .*empty/fashion-mnist\\."):
        load_splits("fashion-mnist")


def test_a_checkpoint_field_of_the_wrong_type_in_every_command(files, capsys, tmp_path):
    from pesto.models import build_model
    from pesto.train.checkpoint import save_checkpoint
    path = tmp_path / "bad.pt"
    ckpt = save_checkpoint(path, build_model("resnet20", in_channels=1, num_classes=10, input_size=8),
                           model_cfg={"name": "resnet20", "in_channels": 1, "num_classes": 10, "input_size": 8},
                           quant={"mode": "fp"}, data={"dataset": "fashion-mnist", "mean": [0.3], "std": [0.3]})
    ckpt["quant"]["cg"] = "16"
    torch.save(ckpt, path)
    for argv in (["export-to-fpga", path, "-o", tmp_path / "x.pesto", "--calib-data", files / "calib.npy"],
                 ["demo", "--checkpoint", path, "--rtl-images", "0", "--profile-images", "0", "-o", tmp_path / "demo"],
                 ["train", "--init", path, "--out", tmp_path / "t.pt", "--subset", "128", "--test-subset", "64",
                  "--epochs", "1", "--no-progress"]):
        code, err = run(argv, capsys)
        assert code == RUNTIME and "field quant.cg must be a positive integer, got '16'" in err, (argv, err)


def test_a_second_run_on_the_same_output_is_refused(files, capsys, tmp_path):
    import textwrap
    out = tmp_path / "model.pesto"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from pesto.util import claim_output
        with claim_output({str(out)!r}):
            print("HOLDING", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "HOLDING"
        code, err = run(["export-to-fpga", "random", "--arch", "resnet20", "--normalisation", "none", "-o", out],
                        capsys)
        assert code == RUNTIME and f"is being written by pid {holder.pid}" in err
    finally:
        holder.kill()
        holder.wait()
