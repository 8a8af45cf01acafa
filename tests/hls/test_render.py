"""The rendered project against the one machine-readable definition (regmap.json), the build
sizing, and the `pesto hls` command line."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from pesto.cli import main
from pesto.errors import ConfigError
from pesto.hls import HLS_DEFAULT, HLS_DIR, VLNV, fit_hw, render_sources
from pesto.hls.render import check_hw
from pesto.hwspec import REGMAP
from pesto.sim.measure import make_layer

PRAGMA = re.compile(r"#pragma HLS INTERFACE s_axilite port=(\w+) offset=(0x[0-9A-Fa-f]+) bundle=(\w+)")


@pytest.fixture(scope="module")
def sources():
    return render_sources(HLS_DEFAULT, source="tests/hls")


def test_axilite_offsets_match_regmap(sources):
    """Every register after the ap_ctrl_hs block is one s_axilite port at its regmap.json offset,
    all in one bundle (the layer-mode registers: the HLS engine has no network mode); the block-level control is ap_ctrl_hs on that bundle (0x00-0x0C)."""
    cpp = sources["pesto_accel.cpp"]
    found = {port: (int(off, 16), bundle) for port, off, bundle in PRAGMA.findall(cpp)}
    want = {r.name.lower(): r.offset for r in REGMAP.layer_registers.values() if r.offset >= 0x10}
    assert {p: off for p, (off, _) in found.items()} == want
    assert {b for _, b in found.values()} == {"control"}
    assert "#pragma HLS INTERFACE s_axilite port=return bundle=control" in cpp
    assert "#pragma HLS INTERFACE ap_ctrl_hs port=return" in cpp
    assert {r.offset for r in REGMAP.registers.values() if r.offset < 0x10} == {0x0, 0x4, 0x8, 0xC}
    # Vitis puts an ap_vld word at offset+4 of an output scalar: registers must be 8 bytes apart.
    offsets = sorted(want.values())
    assert all(b - a >= 8 for a, b in zip(offsets, offsets[1:]))


def test_top_signature_directions(sources):
    """Read-only registers are outputs (references), configuration registers inputs (values)."""
    sig = re.search(r"void pesto_accel\((.*?)\);", sources["pesto_accel.h"], re.S).group(1)
    args = dict((name, ref) for ref, name in re.findall(r"reg_t (&?)(\w+)", sig))
    for r in REGMAP.layer_registers.values():
        if r.offset >= 0x10:
            assert args[r.name.lower()] == ("&" if r.access == "ro" else ""), r.name
    assert "axis_stream &s_axis" in sig and "axis_stream &m_axis" in sig
    cpp = sources["pesto_accel.cpp"]
    assert "#pragma HLS INTERFACE axis port=s_axis" in cpp and "#pragma HLS INTERFACE axis port=m_axis" in cpp


def test_constants_from_regmap(sources):
    h = sources["pesto_accel.h"]
    assert f"#define PESTO_ID 0x{REGMAP.id:08X}u" in h
    assert f"#define PESTO_VERSION 0x{REGMAP.version:08X}u" in h
    for name, code in REGMAP.error_codes.items():
        assert f"#define PESTO_ERR_{name} {code}\n" in h
    for name, code in REGMAP.spec["codes"].items():
        assert f"#define PESTO_CODE_{name.upper()} {code}\n" in h
    assert "typedef ap_axiu<64, 0, 0, 0> axis_word;" in h


def test_shim_only_for_gxx(sources, tmp_path):
    """The ap_axi_sdata.h shim lives in hls/csim/ for g++; no rendered file carries it."""
    assert (HLS_DIR / "csim" / "ap_axi_sdata.h").is_file()
    assert "ap_axi_sdata.h" not in sources
    assert "#include <ap_axi_sdata.h>" in sources["pesto_accel.h"]
    assert "hls/csim" not in sources["run_hls.tcl"] and "-I" not in sources["run_hls.tcl"]


def test_tcl_targets_pynq_z1(sources):
    tcl = sources["run_hls.tcl"]
    vendor, library, name, version = VLNV.split(":")
    assert "set_part {xc7z020clg400-1}" in tcl and "create_clock -period 10.0" in tcl
    assert f"-vendor {vendor} -library {library} -ipname {name} -version {version}" in tcl
    for step in ("csim_design", "csynth_design", "export_design -format ip_catalog"):
        assert step in tcl
    assert "set_top pesto_accel" in tcl


def test_fit_hw_grows_buffers_and_refuses_bad_builds():
    big = make_layer(200, 16, 3, 16, group_sparsity=0.0, seed=0, name="big")
    hw = fit_hw([(big, 40, 40)])
    assert 1 << hw.log2_max_n >= 200 and 1 << hw.log2_max_pix >= 1600 and 1 << hw.log2_act_depth >= 1600
    assert 1 << hw.log2_wgt_depth >= 200 * 9
    with pytest.raises(ConfigError, match="groups per output channel"):
        fit_hw([(make_layer(4, 16 * 65, 1, 16, group_sparsity=0.5, seed=0), 2, 2)])
    with pytest.raises(ConfigError, match="LANES"):
        check_hw(replace(HLS_DEFAULT, lanes=12))
    with pytest.raises(ConfigError, match="NUM_PE"):
        check_hw(replace(HLS_DEFAULT, num_pe=6))


def test_cli_renders_and_csims_a_layer(tmp_path, capsys):
    """`pesto hls --layer JSON -o DIR --csim`: a complete project whose files the TCL names exist,
    built with g++ and passing its own testbench."""
    spec = json.dumps({"name": "cli", "out_channels": 12, "in_channels": 24, "in_h": 7, "in_w": 9,
                       "stride": 2, "group_sparsity": 0.5})
    out = tmp_path / "prj"
    assert main(["hls", "--layer", spec, "-o", str(out), "--csim"]) == 0
    text = capsys.readouterr().out
    assert "2 passed, 0 failed" in text
    tcl = (out / "run_hls.tcl").read_text()
    for f in re.findall(r"add_files (?:-tb )?(\S+)", tcl):
        if not f.startswith("$"):
            assert (out / f).is_file(), f
    for vec in (out / "tb_vectors.lst").read_text().split():
        assert (out / vec).is_file()
    record = json.loads((out / "pesto_hls.json").read_text())
    assert record["vlnv"] == VLNV and record["layers"][0]["name"] == "cli"


def test_cli_errors(tmp_path, capsys):
    assert main(["hls", "-o", str(tmp_path)]) == 2
    assert "give an artifact" in capsys.readouterr().err
    assert main(["hls", "--layer", "nonsense", "-o", str(tmp_path)]) == 2
    assert "not `table7`" in capsys.readouterr().err
    assert main(["hls", "--layer", "table7:stage9", "-o", str(tmp_path)]) == 2
    assert "no table 7 layer" in capsys.readouterr().err


def test_sources_compile_warning_free(tmp_path):
    """-Wall -Wextra clean (HLS pragmas and loop labels aside): narrowing, sign and unused-value
    slips that g++ tolerates can be errors in Vitis HLS's clang front end."""
    import shutil
    import subprocess
    from pesto.hls import render_project
    from pesto.hls.csim import SHIM_DIR, ap_types_dir
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    prj = render_project(tmp_path / "prj", [], HLS_DEFAULT)
    r = subprocess.run(["g++", "-std=c++14", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas",
                        "-Wno-unused-label", f"-I{prj}", f"-I{SHIM_DIR}", "-isystem", str(ap_types_dir()),
                        str(prj / "pesto_accel.cpp"), str(prj / "pesto_tb.cpp")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
