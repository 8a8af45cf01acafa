"""The fast C++ harness (pesto.sim.fast.FastSim) as the driver's Bus: bit-exact with the integer
reference on the layer sweep and on the embedded network, the same outputs and the same cycle
counters as the cocotb path on the same runs, idle/backpressure, deadlines that turn a stalled
engine into a HardwareError quickly, two threads on one bus, and the port-list contract on a
foreign top (tests/rtl_system/rtl/foreign_ip.v)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from pesto.driver import Accelerator, BusBackend
from pesto.driver.protocol import check_identity, connect, run_layer
from pesto.errors import ConfigError, HardwareError
from pesto.hwspec import REGMAP, input_stream, layer_registers, output_words
from pesto.reference import network
from pesto.reference.layer import run_conv
from pesto.sim import open_sim
from pesto.sim.fast import FastSim
from pesto.sim.measure import TABLE7, make_layer, random_input, run_checked, table7_case

pytestmark = [pytest.mark.sim, pytest.mark.xdist_group("rtl_system")]

FOREIGN = [Path(__file__).parent / "rtl" / "foreign_ip.v"]


@pytest.fixture(scope="module")
def fast():
    with FastSim() as bus:
        yield bus


@pytest.fixture(scope="module")
def fhw(fast):
    return connect(fast)


# -- bit-exact on the layer sweep ---------------------------------------------------------------

# (N, C, kernel, stride, pad, cg, group sparsity, H, W, relu): the shapes of test_layers.py and more
SWEEP = [
    (8, 16, 3, 1, 1, 16, 0.0, 6, 6, True),
    (8, 16, 3, 1, 1, 16, 1.0, 5, 7, True),
    (16, 48, 3, 2, 1, 16, 0.5, 9, 8, False),
    (12, 20, 1, 1, 0, 8, 0.3, 7, 5, True),
    (10, 64, 1, 2, 0, 32, 0.6, 8, 8, False),
    (6, 32, 3, 1, 0, 16, 0.25, 6, 9, True),
    (4, 3, 3, 1, 1, 4, 0.0, 10, 10, True),
    (64, 32, 3, 2, 1, 16, 0.75, 14, 14, True),
    (33, 17, 3, 1, 1, 16, 0.9, 4, 4, False),
]


@pytest.mark.parametrize("t", TABLE7, ids=lambda t: t.name)
def test_table7_bit_exact(fast, fhw, t):
    layer, x = table7_case(t.name, seed=11)
    _, dense = run_checked(fast, layer, x, fhw, skip=False)
    _, skip = run_checked(fast, layer, x, fhw, skip=True)
    assert (dense.groups_issued, skip.groups_issued) == (t.groups, t.nnz_groups)
    assert skip.compute_cycles < dense.compute_cycles


def test_layer_sweep_bit_exact(fast, fhw):
    for i, (n, c, k, stride, pad, cg, gs, h, w, relu) in enumerate(SWEEP):
        layer = make_layer(n, c, k, cg, group_sparsity=gs, stride=stride, padding=pad, relu=relu, seed=100 + i)
        x = random_input(c, h, w, seed=200 + i)
        _, skip = run_checked(fast, layer, x, fhw, skip=True)
        _, dense = run_checked(fast, layer, x, fhw, skip=False)
        assert skip.groups_issued == layer_registers(layer, h, w, fhw.lanes)["NNZ"]
        assert skip.compute_cycles <= dense.compute_cycles


def test_weight_reuse_back_to_back(fast, fhw):
    a = make_layer(16, 16, 3, 16, group_sparsity=0.5, seed=21, name="a")
    xa, xa2 = random_input(16, 8, 8, seed=23), random_input(16, 8, 8, seed=24)
    y, first = run_layer(fast, a, xa, fhw)
    y2, again = run_layer(fast, a, xa2, fhw, load_weights=False)
    assert np.array_equal(y, run_conv(xa, a)) and np.array_equal(y2, run_conv(xa2, a))
    assert again.cycles < first.cycles


# -- the same as the cocotb path ----------------------------------------------------------------

def _start(bus, layer, x, hw):
    """What run_layer does before its transfer: the layer's registers, then AP_START."""
    for name, value in layer_registers(layer, x.shape[1], x.shape[2], hw.lanes).items():
        bus.write(REGMAP.offset(name), value)
    bus.read(REGMAP.offset("CTRL"))  # clear a stale AP_DONE
    bus.write(REGMAP.offset("CTRL"), 1 << REGMAP["CTRL"].fields["AP_START"][0])


def _runs(bus, hw):
    """Layer runs of every kind, and a stream cut short: what each returned and cost."""
    out = []
    for i, (n, c, k, stride, pad, cg, gs, h, w, relu) in enumerate(SWEEP[:5]):
        layer = make_layer(n, c, k, cg, group_sparsity=gs, stride=stride, padding=pad, relu=relu, seed=300 + i)
        x = random_input(c, h, w, seed=400 + i)
        for skip, load in ((True, True), (False, True), (True, False)):
            before = bus.now()
            y, stats = run_layer(bus, layer, x, hw, skip=skip, load_weights=load, timeout_s=60)
            out.append((y, stats, bus.now() - before))
    layer = make_layer(8, 16, 3, 16, group_sparsity=0.5, seed=31)
    x = random_input(16, 6, 6, seed=32)
    _start(bus, layer, x, hw)
    with pytest.raises(HardwareError, match="no complete output stream"):
        bus.transfer(input_stream(layer, x, hw.lanes)[:-3], output_words(8, 6, 6), timeout_s=60, max_cycles=5000)
    out.append(tuple(bus.read(REGMAP.offset(r)) for r in ("STATUS", "CTRL", "CYCLES")))
    return out


def test_same_outputs_and_counters_as_cocotb(fast, fhw, accel, hw):
    """The cocotb server (Verilator) and the harness on the same runs: equal outputs, equal
    CYCLES / COMPUTE_CYCLES / GROUPS_ISSUED, and equal clock cycles per run, register traffic
    included (the harness drives AXI with cocotbext-axi's timing)."""
    fast_runs, cocotb_runs = _runs(fast, fhw), _runs(accel, hw)
    assert len(fast_runs) == len(cocotb_runs) == 16
    for (y_f, s_f, c_f), (y_c, s_c, c_c) in zip(fast_runs[:-1], cocotb_runs[:-1]):
        assert np.array_equal(y_f, y_c)
        assert s_f == s_c and c_f == c_c
    assert fast_runs[-1] == cocotb_runs[-1]
    assert REGMAP["STATUS"].field(fast_runs[-1][0], "ERR_CODE") == REGMAP.error_codes["STREAM_SHORT"]


# -- idle, backpressure, deadlines ----------------------------------------------------------------

def test_idle_and_backpressure(fast, fhw):
    layer = make_layer(16, 32, 3, 16, group_sparsity=0.4, seed=5)
    x = random_input(32, 7, 6, seed=6)
    _, quiet = run_checked(fast, layer, x, fhw, skip=True)
    # the output FIFO hides moderate backpressure: this layer's 168 output words leave within
    # its compute time even at 40 % of the cycles, so only heavy backpressure lengthens the run
    for idle, backpressure, slower in ((0.3, 0.0, True), (0.0, 0.9, True), (0.3, 0.5, False)):
        fast.set_noise(idle=idle, backpressure=backpressure, seed=9)
        try:
            _, noisy = run_checked(fast, layer, x, fhw, skip=True)
        finally:
            fast.set_noise()
        assert noisy.groups_issued == quiet.groups_issued
        assert noisy.cycles > quiet.cycles if slower else noisy.cycles >= quiet.cycles


def test_tready_held_low_hits_the_deadline(fast, fhw):
    """No AP_START: the engine never raises s_axis_tready. The wall-clock deadline ends the call
    (the cycle budget would allow hours) with an error that says which stream stalled."""
    layer = make_layer(8, 16, 3, 16, group_sparsity=0.5, seed=31)
    words = input_stream(layer, random_input(16, 6, 6, seed=32), fhw.lanes)
    t0 = time.monotonic()
    with pytest.raises(HardwareError, match=r"0\.5 s of wall time .* accepted 0 of 181 words \(TREADY low"):
        fast.transfer(words, output_words(8, 6, 6), timeout_s=0.5, max_cycles=10**12)
    assert time.monotonic() - t0 < 5
    fast.reset()
    run_checked(fast, layer, random_input(16, 6, 6, seed=32), fhw, skip=True)


def test_stream_without_its_end_hits_the_deadline(fast, fhw):
    """A stream cut short leaves the engine waiting for input that never comes, so no TLAST
    comes back: the cycle budget, and the wall-clock deadline, each end the call at once."""
    layer = make_layer(8, 16, 3, 16, group_sparsity=0.5, seed=33)
    x = random_input(16, 6, 6, seed=34)
    words = input_stream(layer, x, fhw.lanes)[:-3]
    watch, fast.watch = fast.watch, (0, 0)   # the budgets alone (with the watch, STATUS ends it: below)
    try:
        for budget, timeout_s, message in ((20_000, 60.0, r"20000 cycles \(limit 20000\)"),
                                           (10**12, 0.3, r"0\.3 s of wall time")):
            _start(fast, layer, x, fhw)
            t0 = time.monotonic()
            with pytest.raises(HardwareError, match=message + r".*fully accepted.* delivered 0 of 72 words"):
                fast.transfer(words, output_words(8, 6, 6), timeout_s=timeout_s, max_cycles=budget)
            assert time.monotonic() - t0 < 5
            fast.reset()
    finally:
        fast.watch = watch
    _start(fast, layer, x, fhw)
    status = None
    try:
        fast.transfer(words, output_words(8, 6, 6), timeout_s=60, max_cycles=10**9)
    except HardwareError as e:
        status = str(e)
    assert status is not None and "STATUS.ERR_CODE STREAM_SHORT" in status, status   # at once, not after 10^9 cycles
    fast.reset()
    run_checked(fast, layer, x, fhw, skip=True)


# -- threads ------------------------------------------------------------------------------------

def test_two_threads_share_one_bus(fast):
    """Two threads run different layers through one driver on one bus: every output is
    bit-exact (each batch holds the bus, so no thread runs between another's weight load and
    the images that reuse it)."""
    backend = BusBackend(fast, "sim", timeout_s=60, owns_bus=False)
    jobs = [(make_layer(16, 16, 3, 16, group_sparsity=0.5, seed=61),
             np.stack([random_input(16, 8, 8, seed=s) for s in (1, 2, 3)])),
            (make_layer(8, 32, 1, 16, group_sparsity=0.25, seed=62, relu=False),
             np.stack([random_input(32, 6, 6, seed=s) for s in (4, 5)]))]
    errors, done = [], []

    def work(layer, x):
        try:
            for _ in range(4):
                y, _ = backend.conv(x, layer)
                assert np.array_equal(y, np.stack([run_conv(img, layer) for img in x]))
            done.append(layer.name)
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(done) == 2


def test_a_waiting_thread_gives_up_clearly():
    with FastSim(lock_timeout_s=0.2) as bus:
        seen = []
        with bus.session():
            t = threading.Thread(target=lambda: seen.append(_raises(lambda: bus.read(0x10))))
            t.start()
            t.join(timeout=10)
        assert seen and isinstance(seen[0], HardwareError) and "busy in another thread" in str(seen[0])
        assert bus.read(REGMAP.offset("ID")) == REGMAP.id  # free again


def _raises(fn):
    try:
        fn()
    except Exception as e:
        return e
    return None


# -- the embedded network ------------------------------------------------------------------------

def test_embedded_network_bit_exact(embedded):
    """The default sim backend is the fast harness; the 28x28 network's logits equal the
    integer reference bit for bit, and the engine counted every layer."""
    art, images = embedded
    images = images[:4]
    with Accelerator(art, backend="sim") as acc:
        assert isinstance(acc.backend.bus, FastSim)
        logits = acc.execute(images)
        per_image = acc.hw_time(len(images))["hw_cycles_per_image"]
    assert np.array_equal(logits, network.run(art, images))
    assert per_image > 50_000


# -- the port list, on a foreign top --------------------------------------------------------------

@pytest.fixture(scope="module")
def foreign():
    with FastSim(toplevel="foreign_ip", sources=FOREIGN, timeout_s=60) as bus:
        yield bus


def _words(n, seed=0):
    return np.random.default_rng(seed).integers(0, 2**63, size=n, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


@pytest.mark.parametrize("idle,backpressure", [(0.0, 0.0), (0.4, 0.6)])
def test_foreign_round_trip(foreign, idle, backpressure):
    with pytest.raises(HardwareError, match="not a pesto accelerator"):
        check_identity(foreign)
    foreign.write(0x58, 0xDEADBEEF)
    assert foreign.read(0x58) == 0xDEADBEEF
    foreign.set_noise(idle, backpressure, seed=7)
    try:
        w = _words(700, seed=1)
        before = foreign.now()
        assert np.array_equal(foreign.transfer(w, 700, timeout_s=60), w)
        spent = foreign.now() - before
        assert (spent < 705) if idle == backpressure == 0 else (spent > 1000)
    finally:
        foreign.set_noise()


def test_foreign_length_and_budget_errors(foreign):
    with pytest.raises(HardwareError, match="after 64 words, expected 63"):
        foreign.transfer(_words(64), 63, timeout_s=30)
    with pytest.raises(HardwareError, match="after 5 words, expected 9"):
        foreign.transfer(_words(5), 9, timeout_s=30)
    with pytest.raises(HardwareError, match=r"100 cycles \(limit 100\)"):
        foreign.transfer(_words(2000), 2000, timeout_s=60, max_cycles=100)
    foreign.reset()
    assert np.array_equal(foreign.transfer(_words(9, 3), 9, timeout_s=30), _words(9, 3))
    with pytest.raises(ConfigError, match="AXI4-Lite"):
        foreign.read(0x100)  # beyond the 8-bit address space


def test_a_fatal_model_does_not_take_the_host_down():
    with FastSim(toplevel="foreign_ip", sources=FOREIGN, timeout_s=60) as bus:
        bus.write(0x58, 1)
        # Verilator prints the $fatal message and stops the model through vl_fatal ("$stop")
        with pytest.raises(HardwareError, match=r"stopped during an AXI4-Lite write of 0xFC: .*foreign_ip\.v:\d+"):
            bus.write(0xFC, 0xDEAD)
        with pytest.raises(HardwareError, match="stopped"):
            bus.read(0x58)
    with FastSim(toplevel="foreign_ip", sources=FOREIGN, timeout_s=60) as bus:  # a fresh model is fine
        assert bus.read(0x58) == 0


def test_a_top_without_the_port_list_is_refused(tmp_path):
    other = tmp_path / "not_axi.v"
    other.write_text("module not_axi(input wire aclk, input wire aresetn, output wire [7:0] s_axis_tready);\n"
                     "assign s_axis_tready = 8'd0;\nendmodule\n")
    with pytest.raises(ConfigError, match=r"no port s_axil_awaddr .*s_axis_tready is a 8-bit output"):
        FastSim(toplevel="not_axi", sources=[other], timeout_s=60).open()


def test_open_sim_names_and_options():
    assert isinstance(open_sim(), FastSim) and isinstance(open_sim("verilator", max_cycles=10), FastSim)
    with pytest.raises(ConfigError, match="unknown; use one of verilator, cocotb-verilator, icarus"):
        open_sim("modelsim")
    with pytest.raises(ConfigError, match="waves"):
        open_sim("verilator", waves=True)
    with pytest.raises(ConfigError, match="backpressure"):
        FastSim(backpressure=1.0)


def test_a_refused_configuration_is_reported_at_once(fast, fhw):
    """As on the cocotb server: the transfer reads STATUS beside its streams, so a layer the
    engine refuses (CONFIG, no output) ends at once instead of after the 50 M-cycle budget."""
    import time
    layer = make_layer((1 << fhw.log2_max_n) + 1, 16, 1, 16, group_sparsity=0.5, seed=61)
    x = random_input(16, 2, 2, seed=62)
    t0, c0 = time.monotonic(), fast.now()
    with pytest.raises(HardwareError, match=r"CONFIG.*STATUS.ERR_CODE CONFIG after \d+ cycles and sends no output"):
        run_layer(fast, layer, x, fhw, timeout_s=120)
    assert time.monotonic() - t0 < 20 and fast.now() - c0 < 100_000
    run_layer(fast, *table7_case("stage3", seed=63), fhw)   # and the engine still works
