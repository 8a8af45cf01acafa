"""SimAccelerator: the RTL simulation as a ``pesto.driver.protocol.Bus``.

    from pesto.sim.server import SimAccelerator
    from pesto.driver.protocol import check_identity, run_layer
    with SimAccelerator("verilator") as bus:
        hw = check_identity(bus)
        y, stats = run_layer(bus, layer, x, hw)

The host builds the RTL once per (simulator, parameters) (pesto.sim.build), then launches the
simulator running the cocotb test sim/serve.py, which connects back over an AF_UNIX socket and
serves register reads/writes and stream transfers on the DUT's real AXI ports until closed.
One simulator serves any number of layers. Anything that goes wrong (a timeout in simulated
cycles or wall seconds, a malformed output stream, the simulator dying or freezing) becomes a
HardwareError naming what happened, with the simulator's log tail when it died. Every request
has a deadline (``request_timeout_s`` for register accesses, the transfer's own limit plus a
margin for streams); requests from several threads are serialised (``lock``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import ConfigError, HardwareError
from . import wire
from .build import SIMULATORS, build, build_dir_for, run

SERVE_MODULE = "serve"
DEFAULT_MAX_CYCLES = 50_000_000   # per transfer: far above any supported layer, far below forever
REQUEST_TIMEOUT_S = 30.0          # one register access (or reset, noise, cycles): milliseconds when alive
TRANSFER_MARGIN_S = 30.0          # a transfer's reply may come this long after its own wall limit
LOG_TAIL_LINES = 40


def _log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no simulator log)"
    return "\n".join(text[-lines:])


def _kill_group(proc: subprocess.Popen) -> None:
    """Stop the launcher and the simulator it started (their own process group)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


class SimAccelerator:
    """The accelerator RTL running in Icarus or Verilator, seen through its AXI ports.

    simulator: "verilator" (fast) or "icarus"; parameters: the top's Verilog parameters
    (default: the PYNQ-Z1 configuration); timeout_s: wall seconds allowed for building and
    starting the simulator; request_timeout_s: wall seconds one register access may take (a
    frozen simulator is then stopped and reported); max_cycles: simulated-cycle limit of
    one transfer; idle/backpressure: probability of an idle cycle on the input stream / a
    stalled cycle on the output stream (randomised with ``seed``; for tests); watch_status:
    poll the pesto engine's STATUS.ERR_CODE during a transfer, so a run the engine refuses
    (it sends no output then) is reported at once rather than after the transfer's timeout
    (default: on for the pesto_accel top).
    """

    def __init__(self, simulator: str = "verilator", parameters: Mapping[str, object] | None = None,
                 timeout_s: float = 600.0, *, max_cycles: int = DEFAULT_MAX_CYCLES, idle: float = 0.0,
                 backpressure: float = 0.0, seed: int = 0, sources: Sequence[Path] | None = None,
                 toplevel: str = "pesto_accel", waves: bool = False, verbose: bool = False,
                 request_timeout_s: float = REQUEST_TIMEOUT_S, watch_status: bool | None = None):
        if simulator not in SIMULATORS:
            raise ConfigError(f"simulator {simulator!r} unknown; use one of {SIMULATORS}")
        for name, p in (("idle", idle), ("backpressure", backpressure)):
            if not 0.0 <= p < 1.0:
                raise ConfigError(f"{name} probability {p} must be in [0, 1)")
        self.simulator = simulator
        self.parameters = dict(parameters or {})
        for name, t in (("timeout_s", timeout_s), ("request_timeout_s", request_timeout_s)):
            if not (isinstance(t, (int, float)) and 0 < t < float("inf")):
                raise ConfigError(f"{name} must be a positive number of seconds, got {t!r}")
        self.timeout_s = float(timeout_s)
        self.request_timeout_s = float(request_timeout_s)
        self.watch_status = toplevel == "pesto_accel" if watch_status is None else bool(watch_status)
        self.lock = threading.RLock()   # one request (and, through driver.protocol.bus_lock, one run) at a time
        self.max_cycles = int(max_cycles)
        self.noise = (float(idle), float(backpressure), int(seed))
        self.sources = sources
        self.toplevel = toplevel
        self.waves = waves
        self.verbose = verbose
        self.cycles = 0            # clock cycles simulated so far (updated by every request)
        self.period_ns = 10
        self.last_transfer_cycles = 0  # cycles from the first input beat queued to the output's TLAST
        self.log_path: Path | None = None
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._tmp: str | None = None
        self._finalizer = None
        self._died: str | None = None  # why the simulation ended early, repeated by later requests

    # -- lifetime -------------------------------------------------------------------------
    def __enter__(self) -> "SimAccelerator":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    def open(self) -> "SimAccelerator":
        """Build (or reuse) the model, start the simulator and wait for it to connect."""
        with self.lock:
            return self._open()

    def _open(self) -> "SimAccelerator":
        if self.is_open:
            return self
        t0 = time.monotonic()
        self._died = None
        try:
            b = build(self.simulator, self.toplevel, self.parameters, sources=self.sources, waves=self.waves,
                      verbose=self.verbose)
        except (RuntimeError, SystemExit, subprocess.CalledProcessError) as e:
            bdir = build_dir_for(self.simulator, self.toplevel, self.parameters)
            raise HardwareError(f"building {self.toplevel} {self.parameters or ''} for {self.simulator} failed "
                                f"({e}); see {bdir / 'build.log'}") from None
        self._tmp = tempfile.mkdtemp(prefix="pesto-sim-")
        path = os.path.join(self._tmp, "sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(1)
        test_dir = b.build_dir / "serve" / f"{os.getpid()}-{id(self):x}"
        test_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = test_dir / "sim.log"
        spec = {"simulator": b.simulator, "toplevel": b.toplevel, "parameters": b.parameters,
                "build_dir": str(b.build_dir), "sources": [str(s) for s in b.sources],
                "includes": [str(i) for i in b.includes], "waves": b.waves,
                "test_dir": str(test_dir), "socket": path, "seed": self.noise[2]}
        env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen([sys.executable, "-m", "pesto.sim.server", json.dumps(spec)],
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          env=env, start_new_session=True)
        self._finalizer = weakref.finalize(self, _cleanup, self._proc, None, self._tmp)
        try:
            self._sock = self._accept(listener, deadline=t0 + self.timeout_s)
        finally:
            listener.close()
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _cleanup, self._proc, self._sock, self._tmp)
        hello, _ = self._receive(self.timeout_s, "waiting for the simulator's hello")
        self.period_ns = int(hello.get("period_ns", 10))
        idle, backpressure, seed = self.noise
        if idle or backpressure:
            self.set_noise(idle, backpressure, seed)
        return self

    def _accept(self, listener: socket.socket, deadline: float) -> socket.socket:
        listener.settimeout(0.2)
        while True:
            try:
                conn, _ = listener.accept()
                conn.settimeout(None)
                return conn
            except socket.timeout:
                pass
            if self._proc.poll() is not None:
                self._fail(f"the {self.simulator} simulation exited (code {self._proc.returncode}) before "
                           f"connecting")
            if time.monotonic() > deadline:
                self._fail(f"the {self.simulator} simulation did not connect within {self.timeout_s:g} s")

    def close(self) -> None:
        """End the simulation (the cocotb test returns, the simulator exits)."""
        with self.lock:
            self._close()

    def _close(self) -> None:
        sock, proc = self._sock, self._proc
        self._sock = None
        if sock is not None:
            try:
                sock.settimeout(10.0)
                wire.send(sock, {"op": "close"})
                wire.recv(sock)
            except (OSError, wire.WireClosed, ValueError):
                pass
            sock.close()
        if proc is not None:
            try:
                proc.wait(timeout=30.0)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None

    def _fail(self, what: str, *, kill: bool = True):
        """Raise a HardwareError for a simulation that cannot go on, with its log tail."""
        if kill and self._proc is not None:
            _kill_group(self._proc)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._died = what
        tail = _log_tail(self.log_path) if self.log_path else ""
        raise HardwareError(f"{what}; log {self.log_path}, last lines:\n{tail}")

    def _exit_code(self) -> int | None:
        """The simulator's exit status once it is gone (None: still running after 10 s; _fail kills it)."""
        try:
            return self._proc.wait(timeout=10.0) if self._proc else None
        except subprocess.TimeoutExpired:
            return None

    # -- requests -------------------------------------------------------------------------
    def _receive(self, timeout_s: float, what: str) -> tuple[dict, bytes]:
        self._sock.settimeout(timeout_s)
        try:
            header, payload = wire.recv(self._sock)
        except socket.timeout:
            self._fail(f"the {self.simulator} simulation did not answer within {timeout_s:g} s while {what} "
                       f"(frozen or overloaded); it was stopped")
        except (wire.WireClosed, OSError, ValueError) as e:
            self._fail(f"the {self.simulator} simulation died (exit code {self._exit_code()}) while {what}: {e}",
                       kill=True)
        self.cycles = int(header.get("cycles", self.cycles))
        return header, payload

    def _request(self, header: dict, payload: bytes = b"", timeout_s: float | None = None,
                 what: str | None = None) -> tuple[dict, bytes]:
        with self.lock:
            return self._exchange(header, payload, timeout_s, what)

    def _exchange(self, header: dict, payload: bytes, timeout_s: float | None, what: str | None) -> tuple[dict, bytes]:
        if not self.is_open:
            if self._died:
                raise HardwareError(f"the simulation is not running any more: {self._died}")
            raise HardwareError("the simulation is not running: use `with SimAccelerator(...) as bus:` or open()")
        what = what or f"serving {header['op']}"
        self._sock.settimeout(self.request_timeout_s if timeout_s is None else timeout_s)
        try:
            wire.send(self._sock, header, payload)
        except socket.timeout:
            self._fail(f"the {self.simulator} simulation took no request within "
                       f"{self._sock.gettimeout():g} s while {what} (frozen or overloaded); it was stopped")
        except OSError as e:
            self._fail(f"the {self.simulator} simulation died (exit code {self._exit_code()}) before {what}: {e}")
        reply, data = self._receive(self.request_timeout_s if timeout_s is None else timeout_s, what)
        if not reply.get("ok"):
            raise HardwareError(f"simulation {header['op']}: {reply.get('message', reply)}")
        return reply, data

    def read(self, offset: int) -> int:
        return int(self._request({"op": "read", "offset": int(offset)},
                                 what=f"reading register {_register(offset, self.toplevel)}")[0]["value"])

    def write(self, offset: int, value: int) -> None:
        self._request({"op": "write", "offset": int(offset), "value": int(value) & 0xFFFFFFFF},
                      what=f"writing register {_register(offset, self.toplevel)}")

    def transfer(self, words: np.ndarray, n_out: int, timeout_s: float = 60.0,
                 max_cycles: int | None = None) -> np.ndarray:
        """Send ``words`` (uint64, TLAST on the last) and return the ``n_out`` words received.

        Raises HardwareError when no complete output stream arrives within ``max_cycles``
        simulated cycles (default: the instance's) or ``timeout_s`` wall seconds, or when it
        has the wrong length. After a timeout the engine may still be busy: call reset().
        """
        words = np.ascontiguousarray(words, dtype="<u8")
        header = {"op": "transfer", "n_out": int(n_out), "timeout_s": float(timeout_s),
                  "max_cycles": int(self.max_cycles if max_cycles is None else max_cycles)}
        if self.watch_status:
            from ..hwspec import REGMAP
            lo, hi = REGMAP["STATUS"].fields["ERR_CODE"]
            header["watch"] = {"offset": REGMAP.offset("STATUS"), "mask": ((1 << (hi - lo + 1)) - 1) << lo,
                               "name": "STATUS.ERR_CODE", "codes": {str(v): k for k, v in REGMAP.error_codes.items()}}
        reply, data = self._request(header, words.tobytes(), timeout_s=timeout_s + TRANSFER_MARGIN_S,
                                    what=f"streaming {len(words)} words in and {n_out} out")
        self.last_transfer_cycles = int(reply["transfer_cycles"])
        return np.frombuffer(data, dtype="<u8").astype(np.uint64)

    def reset(self) -> None:
        """Pulse aresetn and drop whatever is queued on the streams."""
        self._request({"op": "reset"})

    def set_noise(self, idle: float = 0.0, backpressure: float = 0.0, seed: int = 0) -> None:
        """Random idle cycles on the input stream and backpressure on the output stream."""
        self._request({"op": "noise", "idle": float(idle), "backpressure": float(backpressure), "seed": int(seed)})
        self.noise = (float(idle), float(backpressure), int(seed))

    def now(self) -> int:
        """Clock cycles simulated so far."""
        return self._request({"op": "cycles"})[0]["cycles"]


def _register(offset: int, toplevel: str) -> str:
    """0x30 (STATUS) for the pesto engine, 0x30 for anything else."""
    if toplevel == "pesto_accel":
        from ..hwspec import REGMAP
        for r in REGMAP.registers.values():
            if r.offset == offset:
                return f"0x{offset:02X} ({r.name})"
    return f"0x{offset:02X}"


def _cleanup(proc: subprocess.Popen | None, sock: socket.socket | None, tmp: str | None) -> None:
    if sock is not None:
        sock.close()  # the server sees EOF and ends the test
    if proc is not None:
        try:
            proc.wait(timeout=10.0)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)


def _launch(spec: dict) -> int:
    """Child process: run sim/serve.py on the built model (blocks until the test ends)."""
    from .build import Build
    b = Build(spec["simulator"], spec["toplevel"], spec["parameters"], Path(spec["build_dir"]),
              [Path(s) for s in spec["sources"]], [Path(i) for i in spec["includes"]], spec["waves"])
    run(b, SERVE_MODULE, seed=spec["seed"], extra_env={"PESTO_SIM_SOCKET": spec["socket"]},
        test_dir=Path(spec["test_dir"]))
    return 0


if __name__ == "__main__":
    sys.exit(_launch(json.loads(sys.argv[1])))
