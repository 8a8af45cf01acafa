"""Accelerator v2 (hw/rtl/v2/, top pesto_accel_v2), measured where it stands: the conv step of
the three ResNet-20 layers of the dissertation's table 7 in layer mode (Verilator, the cocotb
bench sim/test_pesto_accel.py::test_table7, bit-exact against pesto.reference in both modes),
its STEP_CYCLES / STEP_ISSUE beside the cycle model (pesto.hwspec.program.layer_cycles) and the
skip speedup beside G/G_nz; plus the yosys synth_xilinx resources of the v2 top on the xc7z020.

    python benchmarks/rtl/v2_table7.py                       # Icarus (a few minutes) + yosys (cached)
    python benchmarks/rtl/v2_table7.py --sim verilator --no-synth

Writes benchmarks/rtl/results/v2_table7.{json,md} and keeps the yosys result in
hw/synth/results/pesto_accel_v2.json.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

from pesto.sim.build import V2_TOP, build, run
from pesto.sim.synth import RECORDS, XC7Z020, format_table, record, synthesize
from pesto.util import atomic_write_text

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sim", choices=("icarus", "verilator"), default="icarus",
                   help="simulator (cycle counts are the same; v2's Verilator model compiles for many minutes)")
    p.add_argument("--no-synth", action="store_true", help="skip yosys (the recorded result is still reported)")
    argv = sys.argv[1:] if argv is None else argv
    args = p.parse_args(argv)
    command = "python benchmarks/rtl/v2_table7.py" + (" " + shlex.join(argv) if argv else "")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "table7.json"
        run(build(args.sim, V2_TOP, {}), "test_pesto_accel", testcase="test_table7",
            extra_env={"PESTO_TABLE7_JSON": str(out)})
        rows = json.loads(out.read_text())
    result = {"command": command, "top": V2_TOP, "simulator": args.sim, "table7": rows}
    lines = [f"# Accelerator v2: table 7 conv steps in layer mode (`{command}`)", "",
             "| layer | input | G_nz/G | conv cycles dense | model | conv cycles skip | model | "
             "issue skip | model | speedup | G/G_nz | fraction |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['weights']} | {r['input']} | {r['nz_groups']}/{r['groups']} | {r['conv_cycles_dense']} | "
                     f"{r['model_dense']['total']} | {r['conv_cycles_skip']} | {r['model_skip']['total']} | "
                     f"{r['issue_skip']} | {r['model_skip']['issue']} | {r['speedup']:.3f} | {r['ideal']:.3f} | "
                     f"{r['fraction_of_ideal']:.3f} |")
    recorded = RECORDS / f"{V2_TOP}.json"
    syn = None
    if not args.no_synth:
        syn = synthesize(top=V2_TOP)
        record(syn, V2_TOP)
    elif recorded.exists():
        syn = json.loads(recorded.read_text())
    if syn is not None:
        result["synth"] = {k: syn[k] for k in ("lut", "ff", "bram36", "dsp", "lut_logic", "lut_memory", "carry4",
                                               "utilization")}
        result["synth"]["key"] = syn.get("key")
        lines += ["", f"yosys synth_xilinx -family xc7 of `{V2_TOP}` (defaults, key {syn.get('key')}) on the xc7z020 "
                  f"({XC7Z020['lut']} LUT):",
                  "", format_table(syn)]
    (HERE / "results").mkdir(exist_ok=True)
    atomic_write_text(HERE / "results" / "v2_table7.json", json.dumps(result, indent=1) + "\n")
    atomic_write_text(HERE / "results" / "v2_table7.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
