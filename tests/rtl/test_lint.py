"""The RTL is plain Verilog that Verilator -Wall accepts without a warning and Icarus compiles,
for the default and other parameter sets."""

import subprocess

import pytest

from pesto.sim.build import RTL_DIR, rtl_sources

PARAMETER_SETS = [
    {},
    {"LANES": 4, "NUM_PE": 4, "LOG2_ACT_DEPTH": 8, "LOG2_WGT_DEPTH": 7, "LOG2_MAX_N": 5, "LOG2_OUT_FIFO": 4},
    {"LANES": 32, "NUM_PE": 8},
    {"LANES": 8, "NUM_PE": 12},
]


@pytest.mark.parametrize("params", PARAMETER_SETS, ids=lambda p: "-".join(f"{k}{v}" for k, v in p.items()) or "default")
def test_verilator_lint_clean(params):
    cmd = ["verilator", "--lint-only", "-Wall", f"-I{RTL_DIR}", "--top-module", "pesto_accel",
           *[f"-G{k}={v}" for k, v in params.items()], *map(str, rtl_sources())]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0 and "%Warning" not in r.stderr, r.stderr


def test_icarus_compiles(tmp_path):
    cmd = ["iverilog", "-g2005", "-Wall", f"-I{RTL_DIR}", "-s", "pesto_accel", "-o", str(tmp_path / "a.vvp"),
           *map(str, rtl_sources())]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_one_module_per_file():
    for src in rtl_sources():
        text = src.read_text()
        modules = [line.split()[1] for line in text.splitlines() if line.startswith("module ")]
        assert modules == [src.stem], f"{src.name} declares {modules}"
