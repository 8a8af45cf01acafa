"""Inputs at the API boundary: the driver and the reference take uint8 pixels, integer pixels
0..255 or floats in [0, 1] and refuse anything else with a message saying what was expected;
export_model refuses a model without a normalisation unless told, and fails (writing nothing)
when its own check finds the integer pipeline broken."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
from tiny import images, tiny_artifact

from pesto import reference
from pesto.driver import Accelerator
from pesto.errors import ConfigError, ExportError
from pesto.reference.network import normalize


@pytest.fixture(scope="module")
def art():
    return tiny_artifact()


@pytest.fixture(scope="module")
def acc(art):
    return Accelerator(art, backend="ref")


BAD_IMAGES = [
    ("float 0..255", lambda x: x.astype(np.float32), r"floats in \[0, 1\].*got float values in \[\d+, 255\].*uint8"),
    ("float -1..1", lambda x: x.astype(np.float32) / 127.5 - 1, r"got float values in \[-0\.9"),
    ("NaN", lambda x: np.where(x > 128, np.nan, x / 255).astype(np.float32), "got NaN values"),
    ("inf", lambda x: np.where(x > 128, np.inf, x / 255).astype(np.float32), "got inf values"),
    ("int out of range", lambda x: x.astype(np.int32) + 100, r"got int32 values in \[\d+, 3\d\d\]"),
    ("negative int", lambda x: x.astype(np.int16) - 256, r"got int16 values in \[-2\d\d, -"),
    ("bool", lambda x: x > 0, "got dtype bool"),
    ("strings", lambda x: np.array([["a"]]), "got dtype <U1"),
    ("wrong channels", lambda x: np.repeat(x, 3, axis=1), r"must be \(batch, 1, 8, 8\).*got shape \(2, 3, 8, 8\)"),
    ("wrong size", lambda x: np.zeros((2, 1, 9, 9), np.uint8), r"got shape \(2, 1, 9, 9\)"),
    ("empty batch", lambda x: x[:0], r"got an empty batch \(0, 1, 8, 8\)"),
    ("rank 5", lambda x: x[None], r"got shape \(1, 2, 1, 8, 8\)"),
    ("ragged", lambda x: [[1, 2], [3]], "not an array|got dtype object|got shape"),
]


@pytest.mark.parametrize("make,match", [c[1:] for c in BAD_IMAGES], ids=[c[0] for c in BAD_IMAGES])
def test_bad_images_are_refused_everywhere(art, acc, make, match):
    x = make(images(2))
    for call in (lambda: acc.execute(x), lambda: acc.classify(x), lambda: normalize(art, x),
                 lambda: reference.run(art, x), lambda: reference.predict(art, x)):
        with pytest.raises(ConfigError, match=match):
            call()


def test_good_encodings_agree(art, acc):
    x = images(3)
    want = acc.execute(x)
    assert np.array_equal(acc.execute(x.astype(np.float32) / np.float32(255)), want)
    assert np.array_equal(acc.execute(x.astype(np.int32)), want)        # integer pixels scale like uint8
    assert np.array_equal(acc.execute(x[:, 0]), want)                   # (B, H, W) of a 1-channel model
    assert np.array_equal(acc.execute(x[0]), want[:1])                  # one (C, H, W) image
    assert np.array_equal(reference.predict(art, x[0]), want[:1].argmax(1))


def test_driver_arguments(art, acc):
    with pytest.raises(ConfigError, match="needs a pesto.artifact.Artifact or the path of a .pesto file, got NoneType"):
        Accelerator(None)
    with pytest.raises(ConfigError, match="clock_mhz must be a finite number > 0"):
        Accelerator(art, clock_mhz=0)
    with pytest.raises(ConfigError, match="skip must be True or False"):
        Accelerator(art, skip="no")
    with pytest.raises(ConfigError, match="repeats must be an integer >= 1, got 0"):
        acc.throughput_test(images(1), repeats=0)
    with pytest.raises(ConfigError, match="float input holds NaN"):
        acc.run_layer("t1", np.full((4, 8, 8), np.nan, np.float32))
    with pytest.raises(ConfigError, match="input must be"):
        acc.run_layer("t1", np.zeros((0, 4, 8, 8), np.int16))
    with pytest.raises(ConfigError, match="batch_size must be an integer >= 1"):
        reference.predict(art, images(2), batch_size=0)
    with pytest.raises(ConfigError, match="normalised images hold NaN"):
        reference.run(art, np.full((1, 1, 8, 8), np.nan, np.float32), normalized=True)


# -- export --------------------------------------------------------------------------------------

def _model():
    from pesto.quant import ternarize_model
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    return ternarize_model(m, cg=4).eval()


def test_export_needs_a_normalisation_unless_told(tmp_path):
    from pesto.export import export_model
    x = images(8)
    with pytest.raises(ConfigError, match="carries no input normalisation.*mean=, std=.*normalisation='none'"):
        export_model(_model(), x)
    art = export_model(_model(), x, normalisation="none")
    assert art.meta["input"]["mean"] == [0.0] and art.meta["input"]["std"] == [1.0]
    assert art.meta["input"]["normalisation"].startswith("none")
    with pytest.raises(ConfigError, match="both mean= and std="):
        export_model(_model(), x, mean=[0.3])
    with pytest.raises(ConfigError, match="std > 0"):
        export_model(_model(), x, mean=[0.3], std=[0.0])
    with pytest.raises(ConfigError, match="not both"):
        export_model(_model(), x, mean=[0.3], std=[0.3], normalisation="none")
    with pytest.raises(ConfigError, match="only explicit choice is 'none'"):
        export_model(_model(), x, normalisation="imagenet")
    with pytest.raises(ConfigError, match="num_calibration must be an integer >= 1, got -1"):
        export_model(_model(), x, normalisation="none", num_calibration=-1)


def test_integer_calibration_images_are_pixels(tmp_path):
    from pesto.export.exporter import _calibration_images
    x = images(4)
    assert np.array_equal(_calibration_images(x.astype(np.int32), {}, 4), _calibration_images(x, {}, 4))
    with pytest.raises(ConfigError, match=r"calibration images must be .*got int32 values in \[300, 300\]"):
        _calibration_images(np.full((2, 1, 8, 8), 300, np.int32), {}, 2)
    with pytest.raises(ConfigError, match="float values"):
        _calibration_images(x.astype(np.float32), {}, 4)


def test_an_export_below_the_agreement_threshold_fails():
    from pesto.export import export_model
    x = images(16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        good = export_model(_model(), x, normalisation="none", verify=16)
        assert good.meta["export"]["verification"]["top1_agreement"] >= 90
        with pytest.raises(ExportError, match=r"agrees with the float model on only .* of 16 calibration images "
                                              r"\(threshold 90 %.*act_bits=1"):
            export_model(_model(), x, normalisation="none", verify=16, act_bits=1)
        bad = export_model(_model(), x, normalisation="none", verify=16, act_bits=1, min_agreement=0.0)
    v = bad.meta["export"]["verification"]
    assert v["min_agreement"] == 0.0 and v["top1_agreement"] < 90
