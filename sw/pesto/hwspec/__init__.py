"""The hardware contract in one machine-readable place: the AXI4-Lite register map
(regmap.json) and the AXI4-Stream packet layouts (protocol.py).

The RTL includes a Verilog header rendered from regmap.json, the HLS templates render their
register offsets from it, and the driver reads it at run time; tests check all three agree.
"""

from .regmap import REGMAP, RegMap, Register, render_verilog_header
from .protocol import (
    HwConfig, hw_codes, pack_weights, pack_activations, pack_outputs, unpack_outputs, layer_registers,
    input_stream, output_words, weight_words, activation_words, encode_codes,
)

__all__ = [
    "REGMAP", "RegMap", "Register", "render_verilog_header",
    "HwConfig", "hw_codes", "pack_weights", "pack_activations", "pack_outputs", "unpack_outputs",
    "layer_registers", "input_stream", "output_words", "weight_words", "activation_words",
    "encode_codes",
]
