"""FastSim: the accelerator RTL as a ``pesto.driver.protocol.Bus``, with no Python per cycle.

    from pesto.sim.fast import FastSim
    from pesto.driver.protocol import connect, run_layer
    with FastSim() as bus:                 # the default (PYNQ-Z1) build of pesto_accel
        hw = connect(bus)
        y, stats = run_layer(bus, layer, x, hw)

The top is verilated together with a small C++ testbench (fastsim.cpp) into a shared library
(pesto.sim.build.build_harness: one cached build per parameter set, ccache, a file lock
against parallel builds) and loaded with ctypes. Each ``read``/``write`` is one AXI4-Lite
transaction and each ``transfer`` one DMA-like round trip (N words out with TLAST on the last,
words back until TLAST), clocked in C++ until it completes, its cycle budget is spent or its
wall-clock deadline passes; the call releases the GIL while it runs. Idle cycles on s_axis and
backpressure on m_axis are optional and seeded. Everything that goes wrong becomes a
HardwareError that names what the harness was waiting for.

The harness knows the top only by its port list (build.HARNESS_PORTS) and the registers only
by offset, so it runs any engine with pesto_accel's ports. The cocotb path
(pesto.sim.server.SimAccelerator) speaks the same protocol with the same timing and stays
the module and protocol verification; ``open_sim`` picks either by name.
"""

from __future__ import annotations

import ctypes
import threading
import time
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, HardwareError
from .build import Harness, build_harness

ABI = 3   # 3: transfers watch a status register
PERIOD_NS = 10                     # 100 MHz: the fabric clock the cycle figures assume
RESET_CYCLES = 8                   # aresetn low, as the cocotb server holds it
REG_MAX_CYCLES = 10_000            # one AXI4-Lite access (the cocotb server's limit)
DEFAULT_MAX_CYCLES = 50_000_000    # one transfer: far above any supported layer, far below forever

# Result.status (fastsim.cpp)
OK, CYCLE_LIMIT, WALL_LIMIT, EARLY_TLAST, FATAL, BAD_ARG, DEAD, ENGINE_ERROR = range(8)
# Result.pending bits: what the call still waited for
PENDING = {1: "AWREADY", 2: "WREADY", 4: "BVALID", 8: "ARREADY", 16: "RVALID"}
P_SRC, P_TLAST = 32, 64


class Result(ctypes.Structure):
    _fields_ = [("cycles", ctypes.c_uint64), ("accepted", ctypes.c_uint64), ("received", ctypes.c_uint64),
                ("stray", ctypes.c_uint64), ("s_stalled", ctypes.c_uint64), ("m_silent", ctypes.c_uint64),
                ("value", ctypes.c_uint32), ("resp", ctypes.c_uint32), ("pending", ctypes.c_uint32),
                ("status", ctypes.c_int32), ("irq", ctypes.c_int32), ("reserved", ctypes.c_int32),
                ("now", ctypes.c_uint64), ("message", ctypes.c_char * 256)]


_LIBS: dict[Path, ctypes.CDLL] = {}
_LIBS_LOCK = threading.Lock()


def _load(path: Path) -> ctypes.CDLL:
    """The harness library at ``path``, loaded once per process, its C API typed."""
    with _LIBS_LOCK:
        if path in _LIBS:
            return _LIBS[path]
        lib = ctypes.CDLL(str(path))
        u64, u32, i32, dbl, vp = ctypes.c_uint64, ctypes.c_uint32, ctypes.c_int32, ctypes.c_double, ctypes.c_void_p
        res = ctypes.POINTER(Result)
        words = ctypes.POINTER(ctypes.c_uint64)
        for name, restype, argtypes in (
                ("fastsim_abi", i32, []),
                ("fastsim_ports", ctypes.c_char_p, []),
                ("fastsim_open", vp, [i32, res]),
                ("fastsim_close", None, [vp]),
                ("fastsim_reset", i32, [vp, i32, res]),
                ("fastsim_write", i32, [vp, u32, u32, u64, dbl, res]),
                ("fastsim_read", i32, [vp, u32, u64, dbl, res]),
                ("fastsim_transfer", i32, [vp, words, u64, words, u64, i32, u64, dbl, u32, u32, res]),
                ("fastsim_run", i32, [vp, u64, res]),
                ("fastsim_noise", None, [vp, dbl, dbl, u64]),
                ("fastsim_cycles", u64, [vp])):
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes
        if lib.fastsim_abi() != ABI:
            raise HardwareError(f"{path} speaks harness ABI {lib.fastsim_abi()}, this pesto {ABI}: delete "
                                f"{path.parent} and it is rebuilt")
        _LIBS[path] = lib
        return lib


class FastSim:
    """The accelerator RTL in Verilator, driven by the C++ harness through its AXI ports.

    parameters: the top's Verilog parameters (default: the PYNQ-Z1 configuration);
    timeout_s: wall seconds allowed for one register access, and for building the model;
    max_cycles: the simulated-cycle budget of one transfer; idle/backpressure: probability of
    an idle cycle on s_axis / a stalled cycle on m_axis, randomised with ``seed`` (which also
    seeds Verilator's random initial values); lock_timeout_s: how long a call waits for another
    thread's call on the same bus before it gives up with a HardwareError; watch_status: read
    the pesto engine's STATUS.ERR_CODE beside a transfer's streams (every 4096 cycles), so a run
    the engine refuses -- it sends no output then -- ends at once instead of after the budget
    (default: on for the pesto_accel top).
    """

    simulator = "verilator"
    kind = "fast"

    def __init__(self, parameters: Mapping[str, object] | None = None, timeout_s: float = 600.0, *,
                 max_cycles: int = DEFAULT_MAX_CYCLES, idle: float = 0.0, backpressure: float = 0.0,
                 seed: int = 0, sources: Sequence[Path] | None = None, toplevel: str = "pesto_accel",
                 lock_timeout_s: float = 120.0, watch_status: bool | None = None):
        _check_noise(idle, backpressure)
        if max_cycles <= 0 or timeout_s <= 0 or lock_timeout_s < 0:
            raise ConfigError("max_cycles and timeout_s must be positive, lock_timeout_s not negative")
        self.parameters = dict(parameters or {})
        self.timeout_s = float(timeout_s)
        self.max_cycles = int(max_cycles)
        self.noise = (float(idle), float(backpressure), int(seed))
        self.sources = sources
        self.toplevel = toplevel
        self.lock_timeout_s = float(lock_timeout_s)
        self.watch = _status_watch() if (toplevel == "pesto_accel" if watch_status is None else watch_status) \
            else (0, 0)
        self.period_ns = PERIOD_NS
        self.cycles = 0                 # clock cycles simulated so far (updated by every call)
        self.last_transfer_cycles = 0   # cycles of the last transfer, first beat queued to TLAST
        self.stray_words = 0            # output words that arrived with no transfer waiting for them
        self.harness: Harness | None = None
        self._lib: ctypes.CDLL | None = None
        self._handle: int | None = None
        self._finalizer = None
        self._lock = threading.RLock()
        self._died: str | None = None

    # -- lifetime -------------------------------------------------------------------------
    def __enter__(self) -> "FastSim":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return self._handle is not None

    def open(self) -> "FastSim":
        """Build (or reuse) the harness library, create the model and reset it."""
        with self.session():
            if self.is_open:
                return self
            self.harness = build_harness(self.toplevel, self.parameters, sources=self.sources)
            self._lib = _load(self.harness.library)
            r = Result()
            handle = self._lib.fastsim_open(int(self.noise[2]) & 0x7FFFFFFF, ctypes.byref(r))
            if not handle:
                raise HardwareError(f"the {self.toplevel} model could not be created: "
                                    f"{r.message.decode(errors='replace')}")
            self._handle = handle
            self._died = None
            self._finalizer = weakref.finalize(self, self._lib.fastsim_close, handle)
            self.reset()
            idle, backpressure, seed = self.noise
            self.set_noise(idle, backpressure, seed)
            return self

    def close(self) -> None:
        """Free the model (its cycles are gone; open() starts a fresh one)."""
        with self.session():
            if self._finalizer is not None:
                self._finalizer()
                self._finalizer = None
            self._handle = None

    @contextmanager
    def session(self, timeout_s: float | None = None) -> Iterator["FastSim"]:
        """Hold the bus for a sequence of calls (a whole layer run) against other threads.

        Every call takes the same lock, so single calls never interleave; a caller that needs
        several calls in a row undisturbed (register writes, start, transfer, counters) wraps
        them in ``with bus.session():``. Waits up to ``timeout_s`` (default lock_timeout_s)."""
        self._acquire(self.lock_timeout_s if timeout_s is None else timeout_s)
        try:
            yield self
        finally:
            self._lock.release()

    def _acquire(self, wait: float) -> None:
        if not self._lock.acquire(timeout=wait):
            raise HardwareError(f"the simulated accelerator is busy in another thread (waited {wait:g} s); "
                                f"share one bus between threads through one driver, or open a FastSim per thread")

    # -- the Bus --------------------------------------------------------------------------
    def read(self, offset: int) -> int:
        return self._call("fastsim_read", int(offset), REG_MAX_CYCLES, self.timeout_s,
                          what="an AXI4-Lite read of 0x{:02X}", offset=offset).value

    def write(self, offset: int, value: int) -> None:
        self._call("fastsim_write", int(offset), int(value) & 0xFFFFFFFF, REG_MAX_CYCLES, self.timeout_s,
                   what="an AXI4-Lite write of 0x{:02X}", offset=offset)

    def transfer(self, words: np.ndarray, n_out: int, timeout_s: float = 60.0,
                 max_cycles: int | None = None) -> np.ndarray:
        """Send ``words`` (uint64, TLAST on the last) and return the ``n_out`` words received.

        n_out = 0 expects no output and returns once the input is accepted. Raises
        HardwareError when no complete output stream arrives within ``max_cycles`` simulated
        cycles (default: the instance's) or ``timeout_s`` wall seconds, naming how far each
        stream got, or when the output has the wrong length. After a timeout the engine may
        still be busy: call reset()."""
        words = np.ascontiguousarray(words, dtype=np.uint64)
        n_out = int(n_out)
        if words.ndim != 1 or n_out < 0:
            raise ConfigError(f"transfer needs a 1-D array of words and n_out >= 0, got {words.shape}, {n_out}")
        budget = int(self.max_cycles if max_cycles is None else max_cycles)
        out = np.zeros(max(n_out, 1), dtype=np.uint64)
        ptr = ctypes.POINTER(ctypes.c_uint64)
        r = self._call("fastsim_transfer", words.ctypes.data_as(ptr), words.size, out.ctypes.data_as(ptr), n_out,
                       int(n_out > 0), budget, float(timeout_s), *self.watch, what="a transfer", check=False)
        self.last_transfer_cycles = int(r.cycles)
        if r.status == OK and (n_out == 0 or r.received == n_out):
            return out[:n_out]
        raise HardwareError(_transfer_failure(r, words.size, n_out, budget, timeout_s))

    # -- beyond the Bus -------------------------------------------------------------------
    def reset(self) -> None:
        """Pulse aresetn (8 cycles low, 2 high) and drop whatever the streams were doing."""
        self._call("fastsim_reset", RESET_CYCLES, what="a reset")

    def set_noise(self, idle: float = 0.0, backpressure: float = 0.0, seed: int = 0) -> None:
        """Random idle cycles on the input stream and backpressure on the output stream."""
        _check_noise(idle, backpressure)
        with self.session():
            self._require_open()
            self._lib.fastsim_noise(self._handle, float(idle), float(backpressure), int(seed) & (2**64 - 1))
            self.noise = (float(idle), float(backpressure), int(seed))

    def run(self, cycles: int) -> None:
        """Let ``cycles`` clock cycles pass with no transaction."""
        self._call("fastsim_run", int(cycles), what="idle cycles")

    def now(self) -> int:
        """Clock cycles simulated so far."""
        with self.session():
            self._require_open()
            self.cycles = int(self._lib.fastsim_cycles(self._handle))
            return self.cycles

    @property
    def ports(self) -> dict:
        """The top's ports as the harness was built against them: name -> (direction, width)."""
        self._require_open()
        return dict(self.harness.ports)

    # -- internals ------------------------------------------------------------------------
    def _require_open(self) -> None:
        if self._handle is None:
            if self._died:
                raise HardwareError(f"the simulation is not running any more: {self._died}")
            raise HardwareError("the simulation is not running: use `with FastSim(...) as bus:` or open()")

    def _call(self, name: str, *args, what: str, offset: int = 0, check: bool = True) -> Result:
        """One C call under the lock; ``what`` (formatted with ``offset``) names it in errors."""
        self._acquire(self.lock_timeout_s)
        try:
            self._require_open()
            r = Result()
            getattr(self._lib, name)(self._handle, *args, ctypes.byref(r))
            self.cycles = r.now
            self.stray_words += r.stray
            if r.status == OK or not check and r.status not in (FATAL, DEAD, BAD_ARG):
                return r
            what = what.format(offset)
            if r.status in (FATAL, DEAD):
                self._died = f"the model stopped during {what}: {r.message.decode(errors='replace')}"
                raise HardwareError(self._died)
            if r.status == BAD_ARG:
                raise ConfigError(f"{what}: offset or value outside the AXI4-Lite ports of {self.toplevel} "
                                  f"({self.harness.ports['s_axil_awaddr'][1]}-bit addresses, "
                                  f"{self.harness.ports['s_axil_wdata'][1]}-bit data)")
            waited = " and ".join(v for bit, v in PENDING.items() if r.pending & bit) or "completion"
            limit = (f"{r.cycles} cycles" if r.status == CYCLE_LIMIT else
                     f"{self.timeout_s:g} s of wall time ({r.cycles} cycles)")
            raise HardwareError(f"{what}: no {waited} from {self.toplevel} after {limit}: the AXI4-Lite slave "
                                f"does not answer; reset() it or check the bitstream")
        finally:
            self._lock.release()


def _check_noise(idle: float, backpressure: float) -> None:
    for name, p in (("idle", idle), ("backpressure", backpressure)):
        if not 0.0 <= p < 1.0:
            raise ConfigError(f"{name} probability {p} must be in [0, 1)")


def _status_watch() -> tuple[int, int]:
    """(offset, mask) of the pesto engine's STATUS.ERR_CODE."""
    from ..hwspec import REGMAP
    lsb, msb = REGMAP["STATUS"].fields["ERR_CODE"]
    return REGMAP.offset("STATUS"), ((1 << (msb - lsb + 1)) - 1) << lsb


def _transfer_failure(r: Result, n_in: int, n_out: int, budget: int, timeout_s: float) -> str:
    """The HardwareError message of a failed transfer: what ended it and how far each stream got."""
    inp = (f"s_axis accepted {r.accepted} of {n_in} words" +
           (f" (TREADY low for the last {r.s_stalled} cycles)" if r.s_stalled else ""))
    outp = f"m_axis delivered {r.received} of {n_out} words" + (
        f" (nothing for the last {r.m_silent} cycles)" if r.m_silent and r.received < max(n_out, 1) else "")
    consumed = "fully" if r.accepted == n_in else "not fully"
    if r.status == ENGINE_ERROR:
        from ..hwspec import REGMAP
        err = REGMAP["STATUS"].field(int(r.value), "ERR_CODE")
        return (f"no complete output stream (TLAST): the engine reports STATUS.ERR_CODE "
                f"{REGMAP.error_names.get(err, err)} after {r.cycles} cycles and sends no output; the input "
                f"stream was {consumed} accepted: {inp}, {outp}")
    if r.status == EARLY_TLAST:
        return (f"the output stream ended (TLAST) before the input stream was accepted: {inp}, "
                f"{r.received} words out")
    if r.status == OK:  # complete, but of the wrong length
        return f"the output stream ended (TLAST) after {r.received} words, expected {n_out}; {inp}"
    over = f"{r.cycles} cycles (limit {budget})" if r.status == CYCLE_LIMIT else \
        f"{timeout_s:g} s of wall time ({r.cycles} cycles)"
    if n_out == 0:
        return f"the input stream was not accepted within {over}: {inp}"
    return (f"no complete output stream (TLAST) after {over}; the input stream was {consumed} accepted: "
            f"{inp}, {outp}")
