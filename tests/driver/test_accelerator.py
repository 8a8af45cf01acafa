"""The driver's API on the integer reference backend, and its refusals (no simulator needed)."""

from __future__ import annotations

import numpy as np
import pytest

from pesto import numerics
from pesto.driver import Accelerator, check_fits, check_identity
from pesto.errors import ConfigError, HardwareError, UnsupportedLayerError
from pesto.hwspec import REGMAP, HwConfig
from pesto.reference import network, run_conv
from pesto.sim.measure import make_layer, random_input

# on the simulator's worker: it shares the session's exported artifact with the sim tests
pytestmark = pytest.mark.xdist_group("driver-sim")


@pytest.fixture(scope="module")
def ref(art):
    return Accelerator(art, backend="ref")


def test_execute_is_the_reference_network(ref, art, fmnist):
    images, labels = fmnist
    logits = ref.execute(images[:4])
    assert logits.shape == (4, art.num_classes) and logits.dtype == np.float32
    assert np.array_equal(logits, network.run(art, images[:4]))
    # the network fits the default v2 build: one network-mode call runs the whole chain
    assert ref.mode == "network" and set(ref.records) == {"network"}
    assert ref.records["network"].calls == 1 and not ref.records["network"].stats   # ref has no counters
    layer = Accelerator(art, backend="ref", mode="layer")
    assert np.array_equal(layer.execute(images[:4]), logits)
    assert set(layer.records) == {layer.name for layer in art.layers}       # every layer went through the hook
    assert all(r.calls == 1 and not r.stats for r in layer.records.values())


def test_image_encodings_agree(ref, fmnist):
    images = fmnist[0][:2]
    want = ref.execute(images)
    assert np.array_equal(ref.execute(images[:, 0]), want)                     # (B, H, W)
    assert np.array_equal(ref.execute(images.astype(np.float32) / 255), want)  # floats in [0, 1]
    assert np.array_equal(ref.classify(images), want.argmax(1))


def test_run_layer_int_and_float(ref, art):
    layer = art.layers[3]
    x = random_input(layer.in_channels, 9, 9, seed=3)
    assert np.array_equal(ref.run_layer(layer.name, x), run_conv(x, layer))
    xf = numerics.dequantize(x, layer.f_in)
    yf = ref.run_layer(layer.name, xf)
    assert yf.dtype == np.float32
    assert np.array_equal(yf, numerics.dequantize(run_conv(x, layer), layer.f_out))


def test_throughput_test_reports_host_share(ref, fmnist):
    r = ref.throughput_test(fmnist[0][:2])
    assert r["batch"] == 2 and r["images_per_s"] > 0
    assert 0 <= r["host_overhead_s"] <= r["runtime_s"]
    assert "hw_cycles_per_image" not in r  # the reference has no cycle counters


@pytest.mark.parametrize("bad, message", [
    (lambda art, img: Accelerator(art, backend="gpu"), "unknown backend"),
    (lambda art, img: Accelerator(art, backend="pynq"), "overlay"),
    (lambda art, img: Accelerator(art).run_layer("nope", np.zeros((16, 4, 4), np.int16)), "no accelerated layer"),
    (lambda art, img: Accelerator(art).execute(np.zeros((2, 3, 12, 12), np.uint8)), r"\(batch, 1, 12, 12\)"),
    (lambda art, img: Accelerator(art).execute(np.zeros((2, 1, 28, 28), np.uint8)), r"1x12x12 model.*\(2, 1, 28, 28\)"),
    (lambda art, img: Accelerator(art).execute(img.astype(np.int32) * 2), r"uint8 pixels 0..255.*int32 values"),
    (lambda art, img: Accelerator(art).profile(img), "no cycle counters"),
    (lambda art, img: Accelerator(art).backend.conv(np.zeros((1, 16, 4, 4), np.float32), art.layers[0]), "int16"),
])
def test_refusals(art, fmnist, bad, message):
    with pytest.raises(ConfigError, match=message):
        bad(art, fmnist[0][:1])


def test_pynq_backend_without_pynq_says_so(art):
    pytest.importorskip("numpy")
    try:
        import pynq  # noqa: F401
        pytest.skip("pynq is installed here")
    except ImportError:
        pass
    with pytest.raises(HardwareError, match="pynq package"):
        Accelerator(art, backend="pynq", overlay="pesto.bit")


class Registers:
    """A register file standing in for a foreign or mismatched bitstream (check_identity reads it)."""

    def __init__(self, **values):
        self.values = {REGMAP.offset(k): v for k, v in values.items()}

    def read(self, offset):
        return self.values.get(offset, 0)


def test_identity_refuses_other_bitstreams():
    with pytest.raises(HardwareError, match="not a pesto accelerator"):
        check_identity(Registers(ID=0x12345678))
    with pytest.raises(HardwareError, match="protocol version 2"):
        check_identity(Registers(ID=REGMAP.id, VERSION=2 << 16))
    hw = check_identity(Registers(ID=REGMAP.id, VERSION=REGMAP.version, HWCFG0=16 | 8 << 8 | 3 << 16,
                                  HWCFG1=10 | 11 << 8 | 8 << 16 | 12 << 24))
    assert hw == HwConfig(16, 8, 3, 10, 11, 8, 12)


def test_check_fits_names_the_limit():
    hw = HwConfig(16, 16, 3, 10, 11, 8, 12)
    check_fits(make_layer(16, 16, 3, 16, nnz_groups=16), 32, 32, hw)           # table 7 stage 1: fits
    check_fits(make_layer(64, 64, 3, 16, nnz_groups=256), 8, 8, hw)            # stage 3 dense: fits
    with pytest.raises(UnsupportedLayerError, match="LOG2_ACT_DEPTH"):
        check_fits(make_layer(16, 16, 3, 16, nnz_groups=9), 33, 32, hw)
    with pytest.raises(UnsupportedLayerError, match="LOG2_MAX_N"):
        check_fits(make_layer(512, 16, 1, 16, nnz_groups=10), 4, 4, hw)
    with pytest.raises(UnsupportedLayerError, match="LOG2_MAX_PIX"):
        check_fits(make_layer(4, 4, 1, 4, nnz_groups=4), 70, 70, hw)
