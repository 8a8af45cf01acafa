"""`pip install pesto` on a PYNQ board: Python 3.10, numpy 1.26, the real pynq package, no torch.

The board venv (pynq_venv.py) installs pesto from its wheel as a board user would. There the base
install must give the driver, the artifact reader, the integer reference and the pynq backend,
produce logits bit for bit equal to the reference under this venv's numpy 2, and answer the
commands that need torch with an error naming the extra to install.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np

BOARD_SCRIPT = r"""
import importlib.metadata as md, importlib.util, json, subprocess, sys
from pathlib import Path
import numpy as np
import pesto
from pesto import artifact
from pesto.driver import Accelerator, pynq_backend  # noqa: F401 (the pynq backend imports here)
from pesto.reference import network

art_path, images_path, out = sys.argv[1:4]
art = artifact.load(art_path)
images = np.load(images_path)
acc = Accelerator(art, backend="ref")
np.savez(out + ".npz", logits=acc.execute(images), run=network.run(art, images),
         layer0=acc.run_layer(art.layers[0].name, np.full((art.layers[0].in_channels, 6, 6), 1234, np.int16)))
pesto_cli = str(Path(sys.executable).with_name("pesto"))
def cli(*argv):
    r = subprocess.run([pesto_cli, *argv], capture_output=True, text=True)
    return {"rc": r.returncode, "out": r.stdout, "err": r.stderr}
info = {
    "python": list(sys.version_info[:2]), "numpy": np.__version__,
    "torch": importlib.util.find_spec("torch") is not None,
    "pesto_file": pesto.__file__, "requires": md.requires("pesto"),
    "pip_check": subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True).returncode,
    "version": cli("--version"), "export": cli("export-to-fpga", art_path, "-o", out + ".pesto"),
    "train": cli("train", "--epochs", "1"), "hwspec": cli("hwspec", "--verilog", out + ".vh"),
}
Path(out + ".json").write_text(json.dumps(info))
"""


def test_board_install_runs_the_driver_without_torch(artifact_path, art, fmnist, tmp_path):
    from pynq_venv import pynq_python

    from pesto.driver import Accelerator
    from pesto.reference import network
    python = pynq_python()
    np.save(tmp_path / "images.npy", fmnist[0][:4])
    out = tmp_path / "board"
    r = subprocess.run([str(python), "-c", BOARD_SCRIPT, str(artifact_path), str(tmp_path / "images.npy"), str(out)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-4000:]
    info = json.loads(out.with_suffix(".json").read_text())

    # the board's interpreter and numpy, no torch, pesto from its wheel with satisfied dependencies
    assert info["python"] == [3, 10] and info["numpy"].startswith("1.26.") and not info["torch"]
    assert "site-packages" in info["pesto_file"] and info["pip_check"] == 0
    base = [req for req in info["requires"] if "extra ==" not in req]
    assert not any(req.startswith("torch") for req in base), base

    # bit for bit what the reference gives under numpy 2 here
    got = dict(np.load(out.with_suffix(".npz")))
    ref = Accelerator(art, backend="ref")
    assert np.array_equal(got["logits"], ref.execute(fmnist[0][:4]))
    assert np.array_equal(got["run"], network.run(art, fmnist[0][:4]))
    layer = art.layers[0]
    assert np.array_equal(got["layer0"], ref.run_layer(layer.name, np.full((layer.in_channels, 6, 6), 1234, np.int16)))

    # the CLI: the version, a torch-free command, and clear errors for the stages that need torch
    assert info["version"]["rc"] == 0 and info["version"]["out"].startswith("pesto ")
    assert info["hwspec"]["rc"] == 0 and out.with_suffix(".vh").is_file()
    for command in ("export", "train"):
        res = info[command]
        assert res["rc"] != 0 and "pesto[train]" in res["err"] and "Traceback" not in res["err"], res
