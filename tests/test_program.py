"""The network program of accelerator v2 (pesto.hwspec.program, docs/accelerator-v2.md): the
packed program, decoded again and run in numpy, is bit-exact with pesto.reference on the
embedded model, random networks with every glue variant and every sub-net; malformed programs
and networks the engine cannot run are refused with a message that names the fix."""

from pathlib import Path

import numpy as np
import pytest

from pesto import artifact as A
from pesto.errors import ConfigError, UnsupportedLayerError
from pesto.hwspec import HwConfig
from pesto.hwspec import program as P
from pesto.sim.networks import (ChainBuilder, chain_io, random_chain, random_images, random_subnets,
                                resnet_artifact)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def embedded():
    """The embedded ResNet-20, exported, and real Fashion-MNIST test images."""
    from pesto.data import load_splits
    from pesto.export import export_model
    _, test = load_splits("fashion-mnist", augment=False)
    images = test.images[:8].numpy()
    art = export_model(str(ROOT / "sw/pesto/assets/resnet20_fmnist_wpc.pt"), calib_images=images, verify=0)
    return art, (images * 255).round().astype(np.uint8)


def test_verilog_header_is_generated_from_program_json():
    committed = (ROOT / "hw" / "rtl" / "pesto_program.vh").read_text()
    assert committed == P.render_verilog_header(), "run `pesto hwspec` to regenerate hw/rtl/pesto_program.vh"


def test_fields_pack_and_refuse_overflow():
    w = P.STEP.pack(OP=2, KERNEL=3, N=64, PAD_BEFORE=8)
    assert P.STEP.get(w, "OP") == 2 and P.STEP.get(w, "N") == 64 and P.STEP.get(w, "PAD_BEFORE") == 8
    assert w[0] == 2 | 3 << 4
    with pytest.raises(ConfigError, match="does not fit"):
        P.ENTRY.pack(N=1 << 10)


def test_embedded_model_bit_exact_skip_and_dense(embedded):
    art, images = embedded
    x, want = chain_io(art, images)
    prog = P.compile_network(art, dense=True)
    assert np.array_equal(prog.execute(x), want)
    assert np.array_equal(prog.execute(x, skip=False), want)
    ops = [s.op for s in prog.steps]
    assert ops[0] == "input" and ops[-1] == "output" and ops.count("conv") == 18 and ops.count("shortcut") == 2
    assert sum(1 for s in prog.conv_steps if s.b is not None) == 9   # every residual add fused into its conv
    # a conv's input and output never overlap (the window reads while the drain writes)
    for s in prog.conv_steps:
        assert s.a.base + s.a.bank_words <= s.d.base or s.d.base + s.d.bank_words <= s.a.base
    prog.check_fits(HwConfig())
    # skipping issues exactly the stored groups, once per 2x2 tile, plus fill-bound passes
    for s in prog.conv_steps:
        c_skip, c_dense = s.cycles(skip=True), s.cycles(skip=False)
        assert c_dense["entries"] == s.out_channels * s.groups
        assert c_skip["entries"] == int(s.stored.sum())
        assert c_skip["issue"] >= s.blocks * c_skip["entries"]


def test_stream_round_trip_and_checksum(embedded):
    art, _ = embedded
    prog = P.compile_network(art)
    words = prog.words()
    mem = P.parse(words)
    assert mem["steps"] == len(prog.steps) and mem["subnets"] == 1 and not mem["dense"]
    assert len(mem["code"]) == len(prog.codes) and len(mem["param"]) == len(prog.params)
    assert all(mem["prog"][i] == v for i, v in enumerate(prog.prog))
    assert prog.checksum == int(words[-1]) & 0xFFFFFFFF
    bad = words.copy()
    bad[5] ^= np.uint64(1 << 7)
    with pytest.raises(ConfigError, match="sum"):
        P.parse(bad)
    bad = words.copy()
    bad[0] ^= np.uint64(1 << 40)
    with pytest.raises(ConfigError, match="magic"):
        P.parse(bad)
    with pytest.raises(ConfigError, match="no dense"):
        prog.execute(np.zeros((16, 28, 28), dtype=np.int16), skip=False)
    with pytest.raises(ConfigError, match="out of range"):
        prog.execute(np.zeros((16, 28, 28), dtype=np.int16), subnet=1)


@pytest.mark.parametrize("seed", range(4))
def test_random_networks_with_every_glue_variant(seed):
    art = random_chain(seed)
    x, want = chain_io(art, random_images(art, 2, seed))
    prog = P.compile_network(art, dense=True)
    assert {"conv", "add", "shortcut", "relu"} <= {s.op for s in prog.steps}
    assert any(s.op == "conv" and s.b is not None for s in prog.steps)       # fused
    assert np.array_equal(prog.execute(x), want)
    assert np.array_equal(prog.execute(x, skip=False), want)


def test_every_subnet_of_a_multi_mask_artifact():
    art = random_subnets(random_chain(7), keep=(1.0, 0.6, 0.2))
    images = random_images(art, 2, 1)
    prog = P.compile_network(art, dense=True)
    assert prog.num_subnets == 3 and prog.names == ["keep100", "keep60", "keep20"]
    stored = sum(int(s.stored.sum()) for s in prog.conv_steps)
    assert len(prog.codes) == stored                      # one copy of the codes for all sub-nets
    issued = []
    for k in range(3):
        x, want = chain_io(art, images, subnet=k)
        assert np.array_equal(prog.execute(x, subnet=k), want), k
        assert np.array_equal(prog.execute(x, subnet=k, skip=False), want), k
        issued.append(sum(s.cycles(k, True)["entries"] for s in prog.conv_steps))
    assert issued[0] > issued[1] > issued[2]


def test_resnet20_cifar_size_fits_the_default_build():
    art = resnet_artifact(20, 32, 3, group_sparsity=0.25)
    x, want = chain_io(art, random_images(art, 1))
    prog = P.compile_network(art, dense=True)
    prog.check_fits(HwConfig())
    assert np.array_equal(prog.execute(x), want)
    skip = sum(r["total"] for r in prog.cycles(0, True))
    dense = sum(r["total"] for r in prog.cycles(0, False))
    assert 1.2 < dense / skip < 4 / 3


def test_fit_check_names_the_memory_and_parameter():
    art = resnet_artifact(20, 32, 3, group_sparsity=0.25)
    prog = P.compile_network(art)
    with pytest.raises(UnsupportedLayerError, match="CODE_DEPTH"):
        prog.check_fits(HwConfig(code_depth=1000))
    with pytest.raises(UnsupportedLayerError, match="LOG2_BANK_DEPTH"):
        prog.check_fits(HwConfig(bank_depth=300))


def test_refusals_name_the_node():
    b = ChainBuilder(4, 8, 8, host_conv=16)
    x = b.quantize()
    y = b.conv(x, 16)
    y.startswith("conv")
    art = b.finish(y)
    art.node(y).layer.padding = 0                          # a 3x3 conv without padding
    art.node(y).layer.validate()
    with pytest.raises(UnsupportedLayerError, match="padded 3x3"):
        P.compile_network(art)
    b = ChainBuilder(4, 8, 8, host_conv=16)
    x = b.quantize()
    nodes = b.nodes
    nodes.append(A.Node("pool", "maxpool", [x], {"kernel": 2, "stride": 2, "padding": 0}, frac=10))
    b.shapes["pool"], b.frac["pool"], b.last = (16, 4, 4), 10, "pool"
    art = b.finish(b.conv("pool", 16))
    with pytest.raises(UnsupportedLayerError, match="maxpool"):
        P.compile_network(art)


def test_cycle_model_proportional_on_shape_classes():
    """Dense over skip issue cycles is G / G_nz whenever every pass holds at least F entries."""
    cases = [  # (N, C, k, stride, size, group sparsity)
        (64, 64, 1, 1, 8, 0.5),     # 1x1, several groups per channel
        (32, 16, 1, 2, 16, 0.5),    # 1x1 stride 2, one group per channel (a projection shortcut)
        (36, 32, 1, 1, 8, 0.5),     # 1x1, two groups, N not a multiple of 16
        (64, 64, 3, 2, 8, 0.5),     # stride 2
        (40, 48, 3, 1, 8, 0.9),     # > 90 % zero groups on an 8x8 map
        (64, 64, 3, 1, 4, 0.9),     # ... on a 4x4 map
    ]
    for n, c, k, s, size, gs in cases:
        b = ChainBuilder(c, size, size)
        y = b.conv(b.quantize(), n, k, s, group_sparsity=gs)
        step = P.compile_network(b.finish(y), dense=True).conv_steps[0]
        dense, skip = step.cycles(0, False), step.cycles(0, True)
        ideal = (step.out_channels * step.groups) / int(step.stored.sum())
        ratio = dense["issue"] / skip["issue"]
        assert ratio >= 0.95 * ideal, (n, c, k, s, size, gs, ratio, ideal)
