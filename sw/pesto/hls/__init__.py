"""HLS C++ of the add/sub PE array: Jinja2 templates in hls/ rendered into a Vitis HLS project
(`pesto hls`), C-simulated here with g++ against hls4ml's ap_types headers.

    from pesto.hls import HLS_DEFAULT, layer_case, render_project, compile_tb, run_tb
    render_project("build/hls", [layer_case(layer, x)])          # sources, testbench, TCL
    result = run_tb(compile_tb("build/hls"), ["build/hls/tb_00_conv.vec"])
    with CSimBus(compile_tb("build/hls")) as bus:                  # a driver Bus over the C-sim
        hw = identity_probe(bus)

docs/hls.md describes the engine, the cycle model and the project layout.
"""

from .render import (HLS_DEFAULT, HLS_DIR, TOOL_VERSIONS, VLNV, fit_hw, render_project, render_sources,
                     top_arguments)
from .vectors import VectorCase, error_cases, layer_case, write_vectors
from .csim import CaseResult, TbRun, ap_types_dir, compile_tb, run_tb
from .bus import CSimBus, identity_probe

__all__ = [
    "HLS_DEFAULT", "HLS_DIR", "TOOL_VERSIONS", "VLNV", "fit_hw", "render_project", "render_sources",
    "top_arguments", "VectorCase", "error_cases", "layer_case", "write_vectors",
    "CaseResult", "TbRun", "ap_types_dir", "compile_tb", "run_tb", "CSimBus", "identity_probe",
]
