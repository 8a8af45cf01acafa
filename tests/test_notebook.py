"""notebooks/pesto_pynq.ipynb, executed end to end with nbclient against the accelerator RTL
(backend "sim"), so the notebook a PYNQ user opens cannot rot.

The RTL simulation is slow (about 10k cycles per wall second), so the notebook runs the small
12x12 ResNet-20 of the driver tests (tests/driver/small_model.py) with its checkpoint for the
float comparison; the embedded 28x28 model goes through the RTL in tests/bench/test_demo.py.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "pesto_pynq.ipynb"

pytestmark = [pytest.mark.sim]


def _small_model():
    spec = importlib.util.spec_from_file_location("pesto_tests_small_model", ROOT / "tests/driver/small_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(artifact path, checkpoint path) of the small ResNet-20."""
    from pesto import artifact
    from pesto.data import load_splits
    from pesto.export import export_model
    small = _small_model()
    folder = tmp_path_factory.mktemp("nb")
    ckpt = small.save_small_checkpoint(folder / "small.pt")
    calib = small.crop(load_splits("fashion-mnist", augment=False)[0].images[:32].numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        art = export_model(str(ckpt), calib_images=calib, verify=0)
    return artifact.save(art, folder / "small.pesto"), ckpt


def _execute(notebook: Path, tmp_path, monkeypatch, env: dict) -> tuple[list, str]:
    """Run ``notebook`` with nbclient under ``env``: (its outputs, their text); no cell may fail."""
    import nbformat
    from nbclient import NotebookClient
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    return outputs, "\n".join(o.get("text", "") for o in outputs)


def test_notebook_runs_on_the_simulated_accelerator(exported, tmp_path, monkeypatch):
    art_path, ckpt = exported
    outputs, text = _execute(NOTEBOOK, tmp_path, monkeypatch, {
        "PESTO_BACKEND": "sim", "PESTO_ARTIFACT": str(art_path), "PESTO_CHECKPOINT": str(ckpt),
        "PESTO_IMAGES": "30", "PESTO_ACCEL_IMAGES": "2"})
    assert "backend 'sim'" in text and "bit for bit on 2 images" in text
    assert "integer pipeline:" in text and "float model:" in text and "on the same 30 images" in text
    assert "hw_cycles_per_image" in text and "end to end" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2  # the test images and the speedup plot


DYNAMIC = ROOT / "notebooks" / "pesto_dynamic.ipynb"


def test_dynamic_notebook_runs_on_the_simulated_accelerator(exported, tmp_path, monkeypatch):
    """The dynamic-inference walk-through: the small model's three pruned sub-nets (with accuracy
    in their metadata, as `pesto demo` writes it) on the RTL, each checked against the reference,
    the accuracy-latency plot, and a switch when the latency budget tightens."""
    from pesto import artifact
    from pesto.bench.dynamic import pruned_subnets
    art_path, _ = exported
    dyn = pruned_subnets(artifact.load(art_path), (1.0, 0.8, 0.6))
    for s, acc in zip(dyn.subnets, (90.0, 85.0, 70.0)):
        s.meta["accuracy"] = {"top1_percent": acc, "images": 10000, "split": "test", "measured_by": "test"}
    path = artifact.save(dyn, tmp_path / "dynamic.pesto")
    outputs, text = _execute(DYNAMIC, tmp_path, monkeypatch,
                             {"PESTO_BACKEND": "sim", "PESTO_ARTIFACT": str(path), "PESTO_IMAGES": "4"})
    assert "backend 'sim'" in text and "keep60" in text and "90.00 %" in text
    assert "bit for bit on 4 images" in text and "(engine counters)" in text
    assert "-> sub-net 0 'keep100'" in text and "-> sub-net 2 'keep60'" in text and "1 switch(es) in 4 images" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 1
