"""A user's own CNN through the public API only -- pesto.train.fit, pesto.export, pesto.load,
predict() on the reference and on the RTL simulation -- and through the CLI with
`pesto train --model package.module:factory`; `pesto --version`."""

from __future__ import annotations

import textwrap
import warnings

import numpy as np
import pytest
import torch

import pesto
from pesto.cli import main

NETS = textwrap.dedent('''
    import torch.nn as nn

    class SmallCNN(nn.Module):
        def __init__(self, in_channels=1, num_classes=10):
            super().__init__()
            self.stem = nn.Conv2d(in_channels, 16, 3, padding=1)
            self.body = nn.Sequential(
                nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2))
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, num_classes))

        def forward(self, x):
            return self.head(self.body(self.stem(x)))

    def small_cnn(in_channels=1, num_classes=10):
        return SmallCNN(in_channels, num_classes)
''')
FAST = dict(epochs=3, steps_per_epoch=40, subset=2560, test_subset=256, batch_size=64, threads=1, progress=False,
            lr=0.1, cg=16)


@pytest.fixture
def nets(tmp_path, monkeypatch):
    (tmp_path / "mynets.py").write_text(NETS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib
    return importlib.import_module("mynets")


@pytest.mark.sim
def test_custom_cnn_through_the_public_api(nets, tmp_path):
    from pesto.data import load_splits
    train, test = load_splits("fashion-mnist", augment=False)
    torch.manual_seed(0)     # the user's module initialises itself: seed it, or the accuracy is a draw
    model = pesto.train.fit(nets.SmallCNN(), "fashion-mnist", mode="wpc", out=str(tmp_path / "net.pt"), **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        art = pesto.export(model, train.images[:64].numpy(), tmp_path / "net.pesto", mean=[0.286], std=[0.353])
    assert [layer.name for layer in art.layers] == ["body.1", "body.4"]   # stem and head stay on the host
    images = test.images[:300].numpy()
    ref = pesto.load(tmp_path / "net.pesto")
    logits = ref.predict(images, batch_size=128)
    assert logits.shape == (300, 10)
    assert (logits.argmax(1) == test.labels[:300].numpy()).mean() > 0.3   # 120 steps: well above chance (10 %)
    with pesto.load(tmp_path / "net.pesto", backend="sim") as sim:
        assert np.array_equal(sim.predict(images[:2]), logits[:2])        # the RTL, bit for bit


def test_cli_trains_a_model_factory_and_exports_its_checkpoint(nets, tmp_path, capsys):
    argv = ["train", "--model", "mynets:small_cnn", "--mode", "wpc", "--out", "cnn.pt", "--epochs", "1",
            "--steps-per-epoch", "2", "--subset", "256", "--test-subset", "128", "--batch-size", "64",
            "--threads", "1", "--no-progress"]
    assert main(argv) == 0
    assert '"name": "mynets:small_cnn"' in capsys.readouterr().out
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).integers(0, 255, (16, 1, 28, 28), dtype=np.uint8))
    assert main(["export-to-fpga", "cnn.pt", "-o", "cnn.pesto", "--calib-data", "calib.npy", "-q"]) == 0
    assert len(pesto.load("cnn.pesto").artifact.layers) == 2


def test_a_factory_that_is_not_there_is_named(nets):
    from pesto.errors import ConfigError
    from pesto.models import build_model
    with pytest.raises(ConfigError, match="cannot import nope from mynets"):
        build_model("mynets:nope")


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"pesto {pesto.__version__}"
