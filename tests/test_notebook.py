"""notebooks/pesto_pynq.ipynb, executed end to end with nbclient against the accelerator RTL
(backend "sim") on a few images, so the notebook a PYNQ user opens cannot rot."""

from __future__ import annotations

import warnings
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "pesto_pynq.ipynb"

pytestmark = [pytest.mark.sim, pytest.mark.slow]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(artifact path, checkpoint path or None): the embedded model when it is there."""
    import torch
    from pesto import artifact
    from pesto.data import load_splits
    from pesto.export import export_model
    ckpt = Path(str(resources.files("pesto").joinpath("assets", "resnet20_fmnist_wpc.pt")))
    calib = load_splits("fashion-mnist", augment=False)[0].images[:32].numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if ckpt.is_file():
            art = export_model(str(ckpt), calib_images=calib, verify=0)
        else:
            from pesto.models import build_model
            torch.manual_seed(0)
            model = build_model("resnet20", in_channels=1, num_classes=10, input_size=28)
            art = export_model(model, calib_images=calib, mean=[0.286], std=[0.353], verify=0)
            ckpt = None
    path = artifact.save(art, tmp_path_factory.mktemp("nb") / "resnet20_fmnist.pesto")
    return path, ckpt


def test_notebook_runs_on_the_simulated_accelerator(exported, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient
    art_path, ckpt = exported
    monkeypatch.setenv("PESTO_BACKEND", "sim")
    monkeypatch.setenv("PESTO_ARTIFACT", str(art_path))
    monkeypatch.setenv("PESTO_IMAGES", "20")
    monkeypatch.setenv("PESTO_ACCEL_IMAGES", "1")
    monkeypatch.setenv("PESTO_FLOAT_RESULTS", str(tmp_path / "none.json"))
    if ckpt:
        monkeypatch.setenv("PESTO_CHECKPOINT", str(ckpt))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "backend 'sim'" in text
    assert "integer pipeline:" in text and "end to end" in text
    if ckpt:
        assert "float model:" in text
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
