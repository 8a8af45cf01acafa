"""`pesto hwspec`: write the Verilog headers the RTL includes (register map, network-program format).

In a source checkout the default targets are the checkout's hw/rtl/pesto_regmap.vh and
hw/rtl/pesto_program.vh (the files the RTL includes); an installed pesto writes them into ./,
never into its own package.
"""

from __future__ import annotations

from pathlib import Path

from .. import resources
from ..util import atomic_write_text
from ..validate import output_file
from . import program
from .regmap import render_verilog_header

HEADER = "pesto_regmap.vh"
PROGRAM_HEADER = "pesto_program.vh"


def default_target(name: str = HEADER) -> Path:
    root = resources.checkout()
    return root / "hw" / "rtl" / name if root is not None else Path(name)


def configure(p):
    p.add_argument("--verilog", type=output_file, default=None,
                   help=f"where to write the register-map header (default: hw/rtl/{HEADER} in a checkout, "
                        f"./{HEADER} when installed)")
    p.add_argument("--program-verilog", type=output_file, default=None,
                   help=f"where to write the network-program header (default: hw/rtl/{PROGRAM_HEADER} in a "
                        f"checkout, ./{PROGRAM_HEADER} when installed)")


def run(args) -> int:
    target = args.verilog or default_target()
    atomic_write_text(target, render_verilog_header())
    print(f"wrote {target}")
    target = args.program_verilog or default_target(PROGRAM_HEADER)
    atomic_write_text(target, program.render_verilog_header())
    print(f"wrote {target}")
    return 0
