"""C simulation without Xilinx tools: g++ builds a rendered project's kernel and testbench
against the ap_types headers hls4ml ships, plus the ap_axi_sdata.h shim in hls/csim/
(hls4ml has no ap_axi_sdata.h; the shim is on the g++ include path only, never in a project)."""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .. import resources
from ..errors import ConfigError, HardwareError
from .render import HLS_DIR

SHIM_DIR = HLS_DIR / "csim"
CXXFLAGS = ["-std=c++14", "-O2", "-w"]


def ap_types_dir() -> Path:
    """hls4ml's copy of the Xilinx ap_types headers (found without importing hls4ml)."""
    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("hls4ml is not installed, and its ap_types headers are what g++ compiles the HLS "
                          "C++ against: run `pip install hls4ml==1.3.0` (or scripts/setup.sh)")
    path = Path(list(spec.submodule_search_locations)[0]) / "templates" / "vivado" / "ap_types"
    if not (path / "ap_int.h").is_file():
        raise ConfigError(f"no ap_int.h under {path}: the hls4ml install is incomplete; reinstall hls4ml==1.3.0")
    return path


def cache_dir() -> Path:
    """Where compiled testbenches are kept, keyed by their sources: $PESTO_HLS_CACHE, else
    hls-csim/ in pesto's cache folder (``pesto.resources.cache_dir``)."""
    return Path(os.environ.get("PESTO_HLS_CACHE") or resources.cache_dir("hls-csim"))


def compile_tb(project_dir, out: str | os.PathLike | None = None, cxx: str | None = None) -> Path:
    """Compile pesto_accel.cpp + pesto_tb.cpp of a rendered project into one executable.

    The sources depend only on the build parameters (the vectors are read at run time), so the
    binary is cached by a hash of the sources, the shim, the compiler and its flags: projects of
    the same build, and repeated runs, compile once."""
    project = Path(project_dir)
    cxx = cxx or os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        raise ConfigError(f"C++ compiler {cxx!r} not found: install g++ (apt-get install g++) or set CXX")
    out = Path(out) if out else project / "pesto_tb"
    ap_types = ap_types_dir()
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout.splitlines()[:1]
    key = hashlib.sha256()
    for part in [*version, *CXXFLAGS, str(ap_types)]:
        key.update(part.encode() + b"\0")
    for f in (project / "pesto_accel.h", project / "pesto_accel.cpp", project / "pesto_tb.cpp",
              SHIM_DIR / "ap_axi_sdata.h"):
        key.update(f.read_bytes() + b"\0")
    cached = cache_dir() / key.hexdigest()[:20] / "pesto_tb"
    cached.parent.mkdir(parents=True, exist_ok=True)
    with open(cached.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # one compile per key, also across pytest workers
        if not cached.is_file():
            tmp = cached.with_name(f".pesto_tb.{os.getpid()}")
            cmd = [cxx, *CXXFLAGS, f"-I{project}", f"-I{SHIM_DIR}", "-isystem", str(ap_types),
                   str(project / "pesto_accel.cpp"), str(project / "pesto_tb.cpp"), "-o", str(tmp)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise HardwareError(f"g++ could not build the HLS C simulation of {project}:\n{proc.stderr[-4000:]}")
            os.replace(tmp, cached)
    if out.resolve() != cached.resolve():
        shutil.copy2(cached, out)
    return out


@dataclass
class CaseResult:
    name: str
    status: int
    groups: int
    cycles: int
    compute_cycles: int
    passed: bool
    fields: dict = field(default_factory=dict)


@dataclass
class TbRun:
    cases: dict          # name -> CaseResult
    hw: dict             # id, version, hwcfg0, hwcfg1 as the engine reported them
    passed: int
    failed: int
    output: str

    def outputs(self, dump_dir, name: str):
        """The output beats the engine wrote for case ``name`` (uint64), from --dump."""
        import numpy as np
        text = (Path(dump_dir) / f"{name}.out").read_text().split()
        return np.array([int(t, 16) for t in text], dtype=np.uint64)


_CASE = re.compile(r"^case (\S+) (.*) result=(PASS|FAIL)\b.*$")


def run_tb(binary, vector_files=(), dump_dir=None, cwd=None, timeout_s: float = 600) -> TbRun:
    """Run a compiled testbench on vector files; parse its per-case report."""
    cmd = [str(binary)]
    if dump_dir is not None:
        Path(dump_dir).mkdir(parents=True, exist_ok=True)
        cmd += ["--dump", str(dump_dir)]
    cmd += [str(v) for v in vector_files]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=timeout_s)
    cases, hw, summary = {}, {}, None
    for line in proc.stdout.splitlines():
        m = _CASE.match(line)
        if m:
            kv = dict(item.split("=", 1) for item in m.group(2).split())
            cases[m.group(1)] = CaseResult(m.group(1), int(kv["status"]), int(kv["groups"]), int(kv["cycles"]),
                                           int(kv["compute_cycles"]), m.group(3) == "PASS", kv)
        elif line.startswith("hw "):
            hw = {k: int(v) for k, v in (item.split("=") for item in line.split()[1:])}
        elif line.startswith("pesto_tb "):
            summary = {k: int(v) for k, v in (item.split("=") for item in line.split()[1:])}
    if summary is None:
        raise HardwareError(f"the HLS testbench ended without its summary (exit {proc.returncode}):\n"
                            f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return TbRun(cases, hw, summary["passed"], summary["failed"], proc.stdout)
