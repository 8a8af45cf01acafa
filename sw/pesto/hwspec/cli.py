"""`pesto hwspec`: write the register-map header the RTL includes."""

from __future__ import annotations

from pathlib import Path

from ..util import atomic_write_text
from ..validate import output_file
from .regmap import render_verilog_header

DEFAULT_VH = Path(__file__).resolve().parents[3] / "hw" / "rtl" / "pesto_regmap.vh"


def configure(p):
    p.add_argument("--verilog", type=output_file, default=DEFAULT_VH, help="where to write the Verilog header")


def run(args) -> int:
    atomic_write_text(args.verilog, render_verilog_header())
    print(f"wrote {args.verilog}")
    return 0
