"""The per-model HLS network engine (pesto.hls.network, hls/pesto_net.cpp.j2) in g++ C simulation:
every sub-net of the embedded ResNet-20 (three sub-nets over its codes) and of a random network
with every glue variant, skipping on and off, bit-exact against the integer reference; the error
cases of network mode; the driver running it as backend "hls" (network and layer mode, switches
mid-batch, the engine's own BAD_SUBNET, a build for fewer sub-nets than the artifact holds).

One g++ build per model: the testbench reads its vectors from files, so the project the vectors
test and the one the driver opens share one binary (pesto.hls.csim's cache)."""

from __future__ import annotations

import numpy as np
import pytest

from pesto import artifact as A
from pesto.bench.dynamic import pruned_subnets
from pesto.driver import Accelerator, protocol
from pesto.errors import ConfigError, HardwareError, UnsupportedLayerError
from pesto.hls import compile_tb, run_tb
from pesto.hls.network import render_model
from pesto.hwspec import REGMAP, unpack_outputs
from pesto.reference import network
from pesto.sim.networks import chain_io, random_chain, random_images, random_subnets

pytestmark = [pytest.mark.xdist_group("hls"),
              pytest.mark.skipif("SUBNET" not in REGMAP.registers,
                                 reason="needs the v2 register map (regmap.json of wip/rtlv2: SUBNET, PROGRAM, ...)")]


@pytest.fixture(scope="module")
def dyn(artifact_path):
    """The exported ResNet-20 of tests/hls as three sub-nets sharing its codes."""
    return pruned_subnets(A.load(artifact_path), (1.0, 0.85, 0.7))


@pytest.fixture(scope="module")
def fmnist():
    from pesto.data.readers import read_fashion_mnist
    from pesto.hls.sources import FMNIST_DIR
    images, labels = read_fashion_mnist(FMNIST_DIR, "test")
    return images[:3], labels[:3]


@pytest.fixture(scope="module")
def chain2():
    return random_subnets(random_chain(3), keep=(1.0, 0.5), seed=3)


def _vectors(art, images, tmp_path):
    out, program, hw = render_model(art, tmp_path / "project", images)
    run = run_tb(compile_tb(out).resolve(), cwd=out, dump_dir=tmp_path / "dump")
    assert run.failed == 0, run.output
    # the testbench compared every beat; check the outputs here too, from the dumped beats
    t = program.output
    for k in range(program.num_subnets):
        _, want = chain_io(art, images, subnet=k)
        for mode in ("skip", "dense"):
            name = f"net_{program.names[k]}_{mode}"
            words = run.outputs(tmp_path / "dump", name)
            per = program.output_words(1)
            got = np.stack([unpack_outputs(words[i * per:(i + 1) * per], t.channels, t.h, t.w)
                            for i in range(len(images))])
            assert np.array_equal(got, want), name
    return run, program


def test_embedded_resnet20_every_subnet_bit_exact(dyn, fmnist, tmp_path):
    images = fmnist[0][:1]
    run, program = _vectors(dyn, images, tmp_path)
    assert program.num_subnets == 3 and len(program.codes) == sum(int(s.stored.sum()) for s in program.conv_steps)
    c = run.cases
    issued = [c[f"net_{n}_skip"].groups for n in program.names]
    assert issued[0] > issued[1] > issued[2]                                  # the sub-nets' issued groups
    assert c["net_keep100_dense"].groups == c["net_keep70_dense"].groups     # dense: every (n, g) for all
    cycles = [c[f"net_{n}_skip"].cycles for n in program.names]
    assert cycles[0] > cycles[1] > cycles[2] and c["net_keep100_dense"].cycles > cycles[0]
    names = REGMAP.error_names
    assert {names[c[k].status] for k in ("net_bad_subnet", "net_stream_short", "net_stream_long",
                                         "load_other_program")} == {"BAD_SUBNET", "STREAM_SHORT", "STREAM_LONG",
                                                                    "BAD_PROGRAM"}
    assert c["load_own_program"].status == 0 and c["net_good_again"].passed
    caps = REGMAP["HWCFG0"].field(run.hw["hwcfg0"], "CAPS")
    assert caps & 1 and caps & 2          # network mode and error packets


def test_random_network_with_every_glue_variant(chain2, tmp_path):
    images = random_images(chain2, 2, 3)
    run, program = _vectors(chain2, images, tmp_path)
    assert {"conv", "add", "shortcut", "relu"} <= {s.op for s in program.steps}
    assert any(s.op == "conv" and s.b is not None for s in program.steps)   # a fused residual add
    assert run.cases["net_no_dense"].status if not program.dense else True


def test_driver_on_the_hls_engine(dyn, fmnist):
    images, _ = fmnist
    want = [network.run(dyn, images, subnet=k) for k in range(3)]
    with Accelerator(dyn, backend="hls") as acc:
        assert acc.mode == "network" and acc.backend.hw.network and acc.program.dense
        for k in range(3):
            acc.select_subnet(k)
            assert np.array_equal(acc.execute(images), want[k]), k
            assert acc.records["network"].stats[0].images == 3
        plan = [2, 0, 1]
        got = acc.execute(images, subnet=plan)
        assert np.array_equal(got, np.stack([want[k][i] for i, k in enumerate(plan)]))
        assert len(acc.records["network"].stats) == 3                 # one run per sub-net switch
        tp = acc.throughput_test(images[:1])
        assert tp["images_per_s_from"] == "engine cycles at 100 MHz" and tp["hw_cycles_per_image"] > 0
        rows = acc.subnets()
        assert rows[0]["cycles"] > rows[1]["cycles"] > rows[2]["cycles"]
        # the engine's own refusal of a sub-net out of range, forced past the driver's check
        bus, x = acc.backend.bus, chain_io(dyn, images[:1], subnet=0)[0]
        bus.write(REGMAP.offset("SUBNET"), 3)
        with pytest.raises(HardwareError, match="BAD_SUBNET"):
            protocol.run_network(bus, acc.program, x, acc.backend.hw)
        with pytest.raises(ConfigError, match="out of range"):
            acc.select_subnet(3)
        acc.select_subnet(1)
        assert np.array_equal(acc.execute(images[:1]), want[1][:1])     # and it still runs after
        acc.skip = False                                                # the dense baseline, same engine
        assert np.array_equal(acc.execute(images[:1]), want[1][:1])
    with Accelerator(dyn, backend="hls", mode="layer", subnet=2) as layer:   # the v1 engine inside
        assert np.array_equal(layer.execute(images[:1]), want[2][:1])


def test_a_build_for_fewer_subnets_than_the_artifact(chain2, tmp_path):
    project = render_model(chain2, tmp_path / "two")[0]               # the engine holds 2 sub-nets
    three = random_subnets(random_chain(3), keep=(1.0, 0.5, 0.25), seed=3)
    with pytest.raises(UnsupportedLayerError, match=r"room for this network but not for its 3 sub-nets .*PARAM_DEPTH"
                                                    r".*bitstreams/build.sh hls ARTIFACT"):
        Accelerator(three, backend="hls", hls_project=project)
    with Accelerator(three, backend="hls", hls_project=project, mode="layer", subnet=2) as layer:   # the way out
        images = random_images(three, 1, 3)
        assert np.array_equal(layer.execute(images), network.run(three, images, subnet=2))
    other = random_subnets(random_chain(3), keep=(1.0, 0.4), seed=4)   # as many, but other masks
    with pytest.raises(HardwareError, match="runs only that network"):
        Accelerator(other, backend="hls", hls_project=project)
    with Accelerator(chain2, backend="hls", hls_project=project) as acc:   # the network it was built for
        images = random_images(chain2, 1, 3)
        assert np.array_equal(acc.execute(images, subnet=1), network.run(chain2, images, subnet=1))


def test_bitstream_build_renders_the_network_engine(chain2, tmp_path):
    """bitstreams/build.sh hls ARTIFACT (stub Xilinx tools): the project Vitis HLS gets is the
    artifact's network engine, its top keeps the interface the block design wires (PORTS) and
    every register of regmap.json at its offset, and Vivado gets the config."""
    import re
    from test_bitstreams import _build, _no_xilinx_path, _stub_tools
    from pesto.hls.bitstream import PORTS
    path = A.save(chain2, tmp_path / "chain.pesto")
    stubs = _stub_tools(tmp_path / "stubs")
    r = _build(["hls", str(path)], {"PESTO_BUILD": str(tmp_path / "b"), "PATH": f"{stubs}:{_no_xilinx_path()}"})
    assert r.returncode == 4 and "Vivado finished without" in r.stderr, r.stdout + r.stderr
    project = tmp_path / "b" / "hls" / "hls"
    cpp = (project / "pesto_accel.cpp").read_text()
    assert "the pesto v2 network engine for one model" in cpp and "static void pesto_layer(" in cpp
    record = __import__("json").loads((project / "pesto_hls.json").read_text())
    assert record["network"]["subnets"] == 2 and record["network"]["names"] == ["keep100", "keep50"]
    offsets = dict(re.findall(r"s_axilite port=(\w+) offset=0x([0-9A-F]+) bundle=control", cpp))
    assert {p: int(o, 16) for p, o in offsets.items()} == {r.name.lower(): r.offset for r in REGMAP.registers.values()
                                                          if r.offset >= 0x10}
    assert set(re.findall(r"#pragma HLS INTERFACE axis port=(\w+)", cpp)) >= {PORTS["hls"]["in"], PORTS["hls"]["out"]}
    calls = (stubs / "calls.log").read_text().splitlines()
    assert calls[0] == f"vitis_hls {project} -f run_hls.tcl" and calls[-1].startswith("vivado ")
