"""bitstreams/: what can be checked without Vivado. The missing-tool error path of build.sh,
its orchestration (stub vivado / vitis_hls that only record their arguments), the generated
configuration against regmap.json and the RTL, and a dry run of the Vivado TCL in a plain Tcl
interpreter where every Vivado command is recorded instead of executed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pesto.hls import HLS_DEFAULT, VLNV, render_sources
from pesto.hls.bitstream import PORTS, RTL_DIR, render_config
from pesto.hwspec import REGMAP

ROOT = Path(__file__).resolve().parents[2]
BUILD_SH = ROOT / "bitstreams" / "build.sh"
TCL_FILES = [ROOT / "bitstreams" / "pynq_z1.tcl", ROOT / "bitstreams" / "package_rtl.tcl"]


def _no_xilinx_path() -> str:
    """PATH without any folder holding vivado or vitis_hls."""
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if d and not any((Path(d) / t).exists() for t in ("vivado", "vitis_hls"))]
    return os.pathsep.join(dirs or ["/usr/bin", "/bin"])


def _build(args, env_extra, cwd=ROOT):
    env = {**os.environ, "PATH": _no_xilinx_path(), "PYTHON": sys.executable, **env_extra}
    return subprocess.run(["bash", str(BUILD_SH), *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)


@pytest.mark.parametrize("variant,missing", [("rtl", ["vivado"]), ("hls", ["vitis_hls", "vivado"])])
def test_build_says_what_is_missing(variant, missing, tmp_path):
    r = _build([variant], {"PESTO_BUILD": str(tmp_path)})
    assert r.returncode == 3, r.stderr
    assert f"not on PATH: {' '.join(missing)}" in r.stderr
    assert "2022.1" in r.stderr and "settings64.sh" in r.stderr and "vivado-boards" in r.stderr
    assert not (tmp_path / variant / "config.tcl").exists()   # nothing started


def test_build_usage(tmp_path):
    r = _build(["bitfile"], {"PESTO_BUILD": str(tmp_path)})
    assert r.returncode == 2 and "usage: bitstreams/build.sh rtl|hls" in r.stderr


def _stub_tools(folder: Path) -> Path:
    folder.mkdir()
    for tool in ("vivado", "vitis_hls"):
        stub = folder / tool
        stub.write_text(f'#!/bin/sh\necho "{tool} $(pwd) $*" >> "{folder}/calls.log"\n')
        stub.chmod(0o755)
    return folder


@pytest.mark.parametrize("variant", ["rtl", "hls"])
def test_build_runs_the_tools_in_order(variant, tmp_path):
    """With (stub) tools on PATH: config rendered, Vitis HLS run in the rendered project (hls),
    Vivado run on pynq_z1.tcl with that config; a Vivado that leaves no .bit is reported."""
    stubs = _stub_tools(tmp_path / "stubs")
    r = _build([variant], {"PESTO_BUILD": str(tmp_path / "b"), "PATH": f"{stubs}{os.pathsep}{_no_xilinx_path()}"})
    assert r.returncode == 4 and "Vivado finished without" in r.stderr, r.stdout + r.stderr
    build = tmp_path / "b" / variant
    calls = (stubs / "calls.log").read_text().splitlines()
    config = (build / "config.tcl").read_text()
    assert f"set PESTO_VLNV {VLNV}" in config
    if variant == "hls":
        assert calls[0] == f"vitis_hls {build / 'hls'} -f run_hls.tcl"
        assert (build / "hls" / "pesto_accel.cpp").is_file() and (build / "hls" / "tb_vectors.lst").is_file()
    assert calls[-1].startswith("vivado ") and f"-source {ROOT / 'bitstreams' / 'pynq_z1.tcl'}" in calls[-1]
    assert calls[-1].endswith(f"-tclargs {build / 'config.tcl'}")


def test_config_matches_rtl_and_hls_interfaces():
    """Build parameters = the RTL's parameter defaults; interface names = the RTL's ports, and
    what Vitis HLS names from the rendered pragmas (s_axi_<bundle>, the stream arguments)."""
    top = (RTL_DIR / "pesto_accel.v").read_text()
    defaults = dict(re.findall(r"parameter\s+(\w+)\s*=\s*(\d+)", top))
    for name in ("LANES", "NUM_PE", "MAX_K", "LOG2_ACT_DEPTH", "LOG2_WGT_DEPTH", "LOG2_MAX_N", "LOG2_MAX_PIX"):
        assert int(defaults[name]) == getattr(HLS_DEFAULT, name.lower()), name
    ports = set(re.findall(r"(?:input|output)\s+wire\s+(?:\[[^\]]+\]\s*)?(\w+)", top))
    rtl = PORTS["rtl"]
    for key in ("clk", "rstn", "irq"):
        assert rtl[key] in ports
    for key in ("lite", "in", "out"):
        assert any(p.startswith(rtl[key] + "_") for p in ports), rtl[key]
    cpp = render_sources(HLS_DEFAULT)["pesto_accel.cpp"]
    bundles = set(re.findall(r"s_axilite port=\w+(?: offset=\w+)? bundle=(\w+)", cpp))
    assert {f"s_axi_{b}" for b in bundles} == {PORTS["hls"]["lite"]}
    streams = set(re.findall(r"#pragma HLS INTERFACE axis port=(\w+)", cpp))
    assert streams == {PORTS["hls"]["in"], PORTS["hls"]["out"]}


class VivadoDryRun:
    """A Tcl interpreter where Vivado's commands are recorded: runs the real TCL control flow,
    so a misspelt variable or a missing sourced file fails here as it would in Vivado."""

    def __init__(self, board: bool = True):
        tkinter = pytest.importorskip("tkinter", reason="the Tcl dry run needs Python's tkinter (Tcl)")
        self.tcl = tkinter.Tcl()
        self.tcl.eval("set ::calls {}")
        self.tcl.eval("proc unknown {args} { lappend ::calls $args; return {} }")
        self.tcl.eval("proc version {args} { return 2022.1 }")
        self.tcl.eval("proc get_property {args} { return 100% }")
        for query in ("get_bd_pins", "get_bd_intf_pins", "get_bd_cells", "create_bd_cell", "get_files"):
            # return the object's name, so nested queries show up in the command that uses them
            self.tcl.eval(f"proc {query} {{args}} {{ lappend ::calls [concat {query} $args]; return [lindex $args end] }}")
        parts = "www.digilentinc.com:pynq-z1:part0:1.0" if board else ""
        self.tcl.eval(f"proc get_board_parts {{args}} {{ lappend ::calls [concat get_board_parts $args]; return {{{parts}}} }}")

    def run(self, config: Path):
        self.tcl.eval(f"set argv [list {{{config}}}]")
        self.tcl.eval(f"source {{{ROOT / 'bitstreams' / 'pynq_z1.tcl'}}}")
        return [self.tcl.splitlist(c) for c in self.tcl.splitlist(self.tcl.eval("set ::calls"))]


@pytest.mark.parametrize("variant", ["rtl", "hls"])
def test_vivado_tcl_dry_run(variant, tmp_path):
    build, out = tmp_path / "build", tmp_path / "out"
    config = tmp_path / "config.tcl"
    config.write_text(render_config(variant, build, HLS_DEFAULT, out=out))
    # what implementation would leave behind
    prj = build / "vivado"
    for f in (prj / f"pesto_{variant}.runs/impl_1/pesto_wrapper.bit",
              prj / f"pesto_{variant}.gen/sources_1/bd/pesto/hw_handoff/pesto.hwh"):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("x")
    dry = VivadoDryRun()
    calls = dry.run(config)
    names = [c[0] for c in calls]
    assert (out / f"pesto_{variant}.bit").is_file() and (out / f"pesto_{variant}.hwh").is_file()
    cells = {c[-1]: c[c.index("-vlnv") + 1] for c in calls if c[0] == "create_bd_cell"}
    assert cells["pesto_accel"] == VLNV == REGMAP.spec["vlnv"]
    assert cells["ps7"].startswith("xilinx.com:ip:processing_system7")
    assert cells["axi_dma"].startswith("xilinx.com:ip:axi_dma") and cells["irq_concat"].startswith("xilinx.com:ip:xlconcat")
    joined = [" ".join(c) for c in calls]
    assert any("set_part" in j or "-part xc7z020clg400-1" in j for j in joined)
    assert any("CONFIG.PCW_S_AXI_HP0_DATA_WIDTH 64" in j for j in joined)
    assert any(f"pesto_accel/{PORTS[variant]['lite']}" in j for j in joined)
    assert any(f"pesto_accel/{PORTS[variant]['irq']}" in j and "irq_concat/In2" in j for j in joined)
    assert any("M_AXIS_MM2S" in j and f"pesto_accel/{PORTS[variant]['in']}" in j for j in joined)
    assert ("ipx::package_project" in names) == (variant == "rtl")
    if variant == "rtl":
        pkg = next(c for c in calls if c[0] == "ipx::package_project")
        vendor, library = VLNV.split(":")[:2]
        assert pkg[pkg.index("-vendor") + 1] == vendor and pkg[pkg.index("-library") + 1] == library
        srcs = next(c for c in calls if c[0] == "add_files" and "-norecurse" in c and any(".v" in a for a in c))
        files = dry.tcl.splitlist(srcs[-1])
        # accelerator v2: its top, every module it instantiates, its headers
        assert any(f.endswith("pesto_accel_v2.v") for f in files) and any(f.endswith("pesto_fat_pe.vh") for f in files)
        assert not any(f.endswith("/pesto_accel.v") or f.endswith("/pesto_pe_array.v") for f in files)
        for f in files:
            assert Path(f).is_file(), f
        top = next(c for c in calls if tuple(c[:2]) == ("set_property", "top"))
        assert top[2] == "pesto_accel_v2", top
        params = next(c for c in calls if c[0] == "set_property" and "-dict" in c and "CONFIG.CODE_DEPTH" in " ".join(c))
        assert "CONFIG.GROUP_CYCLES 2" in " ".join(params) and "CONFIG.LANES 16" in " ".join(params)


def test_vivado_tcl_refuses_without_board_files(tmp_path):
    import tkinter
    config = tmp_path / "config.tcl"
    config.write_text(render_config("rtl", tmp_path / "b", HLS_DEFAULT, out=tmp_path / "o"))
    dry = VivadoDryRun(board=False)
    dry.tcl.eval("set ::env(XILINX_VIVADO) /tools/Xilinx/Vivado/2022.1")
    with pytest.raises(tkinter.TclError, match="no PYNQ-Z1 board files"):
        dry.run(config)
