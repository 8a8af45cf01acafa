"""Loads regmap.json and renders it for the RTL."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    access: str
    doc: str
    fields: dict  # name -> (lsb, msb)

    def field(self, value: int, name: str) -> int:
        lsb, msb = self.fields[name]
        return (value >> lsb) & ((1 << (msb - lsb + 1)) - 1)

    def encode(self, **fields: int) -> int:
        value = 0
        for name, v in fields.items():
            lsb, msb = self.fields[name]
            width = msb - lsb + 1
            if not 0 <= int(v) < (1 << width):
                raise ValueError(f"{self.name}.{name} = {v} does not fit in {width} bits")
            value |= int(v) << lsb
        return value


class RegMap:
    def __init__(self, spec: dict):
        self.spec = spec
        self.registers = {
            r["name"]: Register(r["name"], r["offset"], r["access"], r.get("doc", ""),
                                {k: tuple(v) for k, v in r.get("fields", {}).items()})
            for r in spec["registers"]}
        self.error_codes = dict(spec["error_codes"])
        self.error_names = {v: k for k, v in self.error_codes.items()}
        only = spec.get("network_only", {})
        self.network_registers = set(only.get("registers", []))
        # what an engine without network mode (HWCFG0.CAPS = 0, the HLS engine) implements
        self.layer_registers = {n: r for n, r in self.registers.items() if n not in self.network_registers}
        self.layer_error_codes = {n: c for n, c in self.error_codes.items() if n not in only.get("error_codes", [])}

    def __getitem__(self, name: str) -> Register:
        return self.registers[name]

    def offset(self, name: str) -> int:
        return self.registers[name].offset

    @property
    def id(self) -> int:
        return self.spec["id"]

    @property
    def version(self) -> int:
        return (self.spec["version_major"] << 16) | self.spec["version_minor"]


def _load() -> RegMap:
    text = resources.files(__package__).joinpath("regmap.json").read_text()
    return RegMap(json.loads(text))


REGMAP = _load()


def render_verilog_header(regmap: RegMap = REGMAP) -> str:
    """localparams for the RTL: register offsets, field positions, constants, error codes."""
    s = regmap.spec
    lines = [
        "// Generated from sw/pesto/hwspec/regmap.json by `pesto hwspec` -- do not edit.",
        "// tests/test_hwspec.py fails when this file and regmap.json disagree.",
        f"localparam [31:0] PESTO_ID = 32'h{s['id']:08X};",
        f"localparam [31:0] PESTO_VERSION = 32'h{regmap.version:08X};",
        f"localparam integer PESTO_AXIS_DATA_WIDTH = {s['axis_data_width']};",
        f"localparam integer PESTO_ACT_BITS = {s['act_bits']};",
    ]
    for name, code in s["codes"].items():
        lines.append(f"localparam [1:0] PESTO_CODE_{name.upper()} = 2'd{code};")
    for name, code in s["error_codes"].items():
        lines.append(f"localparam [7:0] PESTO_ERR_{name} = 8'd{code};")
    for r in regmap.registers.values():
        lines.append(f"localparam [7:0] PESTO_REG_{r.name} = 8'h{r.offset:02X};")
        for f, (lsb, msb) in r.fields.items():
            lines.append(f"localparam integer PESTO_{r.name}_{f}_LSB = {lsb};")
            if msb != lsb:
                lines.append(f"localparam integer PESTO_{r.name}_{f}_MSB = {msb};")
    return "\n".join(lines) + "\n"
