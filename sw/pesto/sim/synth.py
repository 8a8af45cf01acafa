"""Resource counts of the accelerator from yosys ``synth_xilinx -family xc7`` (xc7z020).

    from pesto.sim.synth import synthesize, XC7Z020
    r = synthesize()            # default PYNQ-Z1 configuration of pesto_accel
    r["lut"], r["ff"], r["bram36"], r["dsp"], r["utilization"]["lut"]

The script is hw/synth/synth.ys. A result is keyed by the sources' contents, the
parameters, the script and the yosys version, and cached under build/synth/. Synthesizing
the default build takes yosys several minutes, so ``record`` also keeps it in
hw/synth/results/ (committed, written by benchmarks/rtl/speedup.py): a later call on exactly
the same RTL takes it from there; any change to the RTL, the script or yosys runs yosys again.
``python -m pesto.sim.synth`` prints the table.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import shutil
import string
import subprocess
import sys
import time
from pathlib import Path
from typing import Mapping, Sequence

from .. import resources
from ..errors import ConfigError, HardwareError
from ..util import atomic_write_text
from .build import RTL_DIR, sources_for

SCRIPT = resources.path("hw/synth/synth.ys")
RECORDS = resources.path("hw/synth/results")
CACHE_ROOT = resources.cache_dir("synth")

# The PYNQ-Z1's Zynq-7020 programmable logic.
XC7Z020 = {"lut": 53_200, "ff": 106_400, "bram36": 140, "dsp": 220}

# Slice LUTs a distributed-RAM / shift-register primitive occupies (7-series SLICEM).
LUTRAM_LUTS = {"RAM16X1S": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4,
               "RAM16X1D": 2, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM32M": 4,
               "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8, "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1}
FF_CELLS = ("FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE")


def yosys_version() -> str:
    exe = shutil.which("yosys")
    if exe is None:
        raise ConfigError("yosys not found on PATH; install Debian's yosys (scripts/setup.sh does)")
    return subprocess.run([exe, "-V"], capture_output=True, text=True, check=True).stdout.strip()


def render_script(top: str, parameters: Mapping[str, object], sources: Sequence[Path], stat_json: Path) -> str:
    chparams = "\n".join(f"chparam -set {k} {int(v)} {top}" for k, v in sorted(parameters.items())) \
        or "# (default parameters)"
    return string.Template(SCRIPT.read_text()).substitute(
        SOURCES=" ".join(str(s) for s in sources), INCLUDE=str(RTL_DIR), TOP=top, CHPARAMS=chparams,
        STAT_JSON=str(stat_json))


def summarize(cells: Mapping[str, int]) -> dict:
    """Map yosys xc7 cell counts to the figures a Vivado utilisation report gives."""
    # INV is a LUT1 once placed.
    lut_logic = sum(n for c, n in cells.items() if c.startswith("LUT") and c[3:].isdigit()) + cells.get("INV", 0)
    lut_mem = sum(LUTRAM_LUTS[c] * n for c, n in cells.items() if c in LUTRAM_LUTS)
    ramb36 = cells.get("RAMB36E1", 0)
    ramb18 = cells.get("RAMB18E1", 0)
    known = {c for c in cells if (c.startswith("LUT") and c[3:].isdigit())} | set(LUTRAM_LUTS) | set(FF_CELLS) | {
        "RAMB36E1", "RAMB18E1", "DSP48E1", "CARRY4", "MUXF7", "MUXF8", "BUFG", "IBUF", "OBUF", "INV"}
    return {
        "lut": lut_logic + lut_mem,          # slice LUTs: logic + distributed RAM / shift registers
        "lut_logic": lut_logic,
        "lut_memory": lut_mem,
        "ff": sum(cells.get(c, 0) for c in FF_CELLS),
        "bram36": ramb36 + 0.5 * ramb18,     # a RAMB18 is half a BRAM36 tile
        "ramb36e1": ramb36,
        "ramb18e1": ramb18,
        "dsp": cells.get("DSP48E1", 0),
        "carry4": cells.get("CARRY4", 0),
        "muxf7": cells.get("MUXF7", 0),
        "muxf8": cells.get("MUXF8", 0),
        "other_cells": {c: n for c, n in cells.items() if c not in known},
    }


def _cache_key(top: str, parameters: Mapping[str, object], sources: Sequence[Path], version: str) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([top, sorted((k, int(v)) for k, v in parameters.items()), version]).encode())
    h.update(SCRIPT.read_bytes())
    for src in list(sources) + sorted(RTL_DIR.glob("*.vh")):
        h.update(src.name.encode())
        h.update(src.read_bytes())
    return h.hexdigest()[:20]


def synthesize(parameters: Mapping[str, object] | None = None, top: str = "pesto_accel",
               sources: Sequence[Path] | None = None, use_cache: bool = True, timeout_s: float = 1800.0) -> dict:
    """Synthesize ``top`` with ``parameters`` for the xc7 family; returns the resource summary
    (see ``summarize``) plus the raw cell counts, utilisation of the xc7z020 and run time."""
    parameters = {k: int(v) for k, v in (parameters or {}).items()}
    sources = [Path(s) for s in (sources or sources_for(top))]
    version = yosys_version()
    key = _cache_key(top, parameters, sources, version)
    out_dir = CACHE_ROOT / f"{top}-{key}"
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a parallel caller waits for this run's result
        return _synthesize(top, parameters, sources, version, key, out_dir, use_cache, timeout_s)


def _recorded(key: str) -> dict | None:
    """A committed result of exactly these inputs (see ``record``), if there is one."""
    for path in sorted(RECORDS.glob("*.json")):
        try:
            r = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if r.get("key") == key:
            return dict(r, source=str(path.relative_to(resources.base())))
    return None


def record(result: dict, name: str | None = None) -> Path:
    """Keep ``result`` in hw/synth/results/ (committed) so CI need not rerun yosys on this RTL."""
    if resources.checkout() is None:
        raise ConfigError("synth.record keeps results in a source checkout's hw/synth/results/; "
                          "an installed pesto has none (save the result dict yourself)")
    path = RECORDS / f"{name or result['top']}.json"
    atomic_write_text(path, json.dumps({k: v for k, v in result.items() if k != "source"}, indent=2,
                                       sort_keys=True) + "\n")
    return path


def _synthesize(top, parameters, sources, version, key: str, out_dir: Path, use_cache: bool,
                timeout_s: float) -> dict:
    result_file = out_dir / "result.json"
    if use_cache and result_file.exists():
        try:
            return json.loads(result_file.read_text())
        except json.JSONDecodeError:
            pass  # a damaged cache entry: synthesize again
    if use_cache and (kept := _recorded(key)) is not None:
        return kept
    stat_json = out_dir / "stat.json"
    stat_json.unlink(missing_ok=True)
    script = out_dir / "synth.ys"
    atomic_write_text(script, render_script(top, parameters, sources, stat_json))
    log = out_dir / "yosys.log"
    t0 = time.monotonic()
    try:
        proc = subprocess.run(["yosys", "-q", "-l", str(log), "-s", str(script)], cwd=out_dir,
                              capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise HardwareError(f"yosys did not finish {top} within {timeout_s:g} s; see {log}") from None
    seconds = time.monotonic() - t0
    if proc.returncode != 0 or not stat_json.exists():
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise HardwareError(f"yosys failed on {top} (exit code {proc.returncode}); see {log}:\n{tail}")
    stat = json.loads(stat_json.read_text())
    design = stat.get("design") or next(iter(stat["modules"].values()))
    cells = {name.lstrip("\\$"): int(n) for name, n in design["num_cells_by_type"].items()}
    result = {"top": top, "parameters": parameters, "yosys": version, "seconds": round(seconds, 1),
              "key": key, "source": "yosys",
              "cells": cells, **summarize(cells)}
    result["device"] = "xc7z020"
    result["budget"] = dict(XC7Z020)
    result["utilization"] = {k: result[k] / XC7Z020[k] for k in XC7Z020}
    result["fits"] = all(result[k] <= XC7Z020[k] for k in XC7Z020)
    atomic_write_text(result_file, json.dumps(result, indent=2, sort_keys=True))
    return result


def format_table(result: dict) -> str:
    rows = ["| resource | used | xc7z020 | utilisation |", "|---|---:|---:|---:|"]
    for k, label in (("lut", "LUT"), ("ff", "FF"), ("bram36", "BRAM36"), ("dsp", "DSP48E1")):
        rows.append(f"| {label} | {result[k]:g} | {XC7Z020[k]} | {100 * result['utilization'][k]:.1f}% |")
    rows.append(f"| (LUT as logic / as memory) | {result['lut_logic']} / {result['lut_memory']} | | |")
    rows.append(f"| CARRY4 | {result['carry4']} | | |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pesto.sim.synth", description=__doc__.splitlines()[0])
    p.add_argument("--top", default="pesto_accel")
    p.add_argument("-P", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="override a Verilog parameter (repeatable)")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--timeout-s", type=float, default=1800.0, help="give yosys up to this long (default 1800)")
    p.add_argument("--show-script", action="store_true", help="print the yosys script and exit")
    p.add_argument("--record", action="store_true",
                   help="also keep the result in hw/synth/results/ (commit it after changing the RTL)")
    args = p.parse_args(argv)
    params = {}
    for item in args.param:
        name, _, value = item.partition("=")
        if not value:
            raise SystemExit(f"--param {item!r}: use NAME=VALUE")
        params[name] = int(value, 0)
    if args.show_script:
        print(render_script(args.top, params, sources_for(args.top), Path("stat.json")))
        return 0
    r = synthesize(params, top=args.top, use_cache=not args.no_cache, timeout_s=args.timeout_s)
    print(f"{args.top} {params or '(defaults)'}: yosys synth_xilinx -family xc7, {r['seconds']} s")
    print(format_table(r))
    if args.record:
        print(f"recorded in {record(r, args.top if not params else None)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
