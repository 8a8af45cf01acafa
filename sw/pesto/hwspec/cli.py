"""`pesto hwspec`: write the register-map header the RTL includes.

In a source checkout the default target is the checkout's hw/rtl/pesto_regmap.vh (the file the
RTL includes); an installed pesto writes ./pesto_regmap.vh, never into its own package.
"""

from __future__ import annotations

from pathlib import Path

from .. import resources
from ..util import atomic_write_text
from ..validate import output_file
from .regmap import render_verilog_header

HEADER = "pesto_regmap.vh"


def default_target() -> Path:
    root = resources.checkout()
    return root / "hw" / "rtl" / HEADER if root is not None else Path(HEADER)


def configure(p):
    p.add_argument("--verilog", type=output_file, default=None,
                   help=f"where to write the Verilog header (default: hw/rtl/{HEADER} in a checkout, "
                        f"./{HEADER} when installed)")


def run(args) -> int:
    target = args.verilog or default_target()
    atomic_write_text(target, render_verilog_header())
    print(f"wrote {target}")
    return 0
