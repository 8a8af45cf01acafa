"""`pesto hwspec`: write the Verilog headers the RTL includes (register map, program format)."""

from __future__ import annotations

from pathlib import Path

from ..util import atomic_write_text
from ..validate import output_file
from . import program
from .regmap import render_verilog_header

RTL = Path(__file__).resolve().parents[3] / "hw" / "rtl"
DEFAULT_VH = RTL / "pesto_regmap.vh"
PROGRAM_VH = RTL / "pesto_program.vh"


def configure(p):
    p.add_argument("--verilog", type=output_file, default=DEFAULT_VH, help="where to write the register-map header")
    p.add_argument("--program-verilog", type=output_file, default=PROGRAM_VH,
                   help="where to write the network-program header")


def run(args) -> int:
    atomic_write_text(args.verilog, render_verilog_header())
    print(f"wrote {args.verilog}")
    atomic_write_text(args.program_verilog, program.render_verilog_header())
    print(f"wrote {args.program_verilog}")
    return 0
