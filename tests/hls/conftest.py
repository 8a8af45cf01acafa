"""The HLS C simulation, built once per pytest worker: every test that runs it is in the xdist
group "hls", so they share one worker and one g++ build of the rendered kernel + testbench.
The testbench reads its vectors from files, so one binary runs every case."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from pesto.hls import HLS_DEFAULT, compile_tb, render_project, run_tb, write_vectors
from pesto.hls.sources import FMNIST_DIR
from pesto.hwspec import unpack_outputs
from pesto.reference import run_conv

# Big enough for every case of tests/hls (ResNet-20 on 28x28, table 7, the random sweep).
TEST_HW = HLS_DEFAULT


@dataclass
class CSim:
    binary: Path
    project: Path
    hw: object

    def run(self, tmp_path: Path, cases):
        """Run cases (in order, one process) and return the TbRun; outputs are dumped to tmp_path."""
        vec = tmp_path / "cases.vec"
        write_vectors(vec, cases)
        return run_tb(self.binary, [vec], dump_dir=tmp_path / "dump")

    def outputs(self, tmp_path: Path, run, case, layer):
        """The engine's output beats of ``case`` unpacked to int16 (N, Ho, Wo)."""
        words = run.outputs(tmp_path / "dump", case.name)
        ho, wo = case.meta["out_hw"]
        return unpack_outputs(words, layer.out_channels, ho, wo)

    def check(self, tmp_path: Path, pairs):
        """pairs: [(layer, x)] -> run each with skipping on and off, compare with the reference.
        Returns {case name: CaseResult}."""
        from pesto.hls import layer_case
        cases, meta = [], []
        for layer, x in pairs:
            for skip in (True, False):
                c = layer_case(layer, x, self.hw.lanes, skip=skip)
                cases.append(c)
                meta.append((c, layer, x))
        run = self.run(tmp_path, cases)
        assert run.failed == 0, run.output
        for c, layer, x in meta:
            got = self.outputs(tmp_path, run, c, layer)
            np.testing.assert_array_equal(got, run_conv(x, layer), err_msg=c.name)
        return run.cases


@pytest.fixture(scope="session")
def csim(tmp_path_factory):
    project = render_project(tmp_path_factory.mktemp("hls_project"), [], TEST_HW, source="tests/hls")
    return CSim(compile_tb(project), project, TEST_HW)


# -- an exported ResNet-20 (session-wide: xdist may interleave the modules that use it) --

ASSET = Path(str(resources.files("pesto").joinpath("assets", "resnet20_fmnist_wpc.pt")))


def _random_sparse_resnet20():
    import torch
    from pesto.models import build_model
    from pesto.quant import latent_weight, ternarize_model, ternary_layers
    torch.manual_seed(0)
    model = ternarize_model(build_model("resnet20", in_channels=1, num_classes=10, input_size=28), cg=16)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _, m, cg in ternary_layers(model):
            w = latent_weight(m)
            n, c = w.shape[:2]
            dead = (torch.rand(n, -(-c // cg), generator=g) < 0.4).repeat_interleave(cg, dim=1)[:, :c]
            w[dead.view(n, c, *([1] * (w.dim() - 2))).expand_as(w)] = 0
    return model.eval()


@pytest.fixture(scope="session")
def artifact_path(tmp_path_factory):
    pytest.importorskip("torch")
    from pesto import artifact
    from pesto.data.readers import read_fashion_mnist
    from pesto.export import export_model
    calib = read_fashion_mnist(FMNIST_DIR, "train")[0][:32]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if ASSET.is_file():
            art = export_model(str(ASSET), calib_images=calib, verify=0)
        else:
            art = export_model(_random_sparse_resnet20(), calib_images=calib, mean=[0.286], std=[0.353], verify=0)
    return artifact.save(art, tmp_path_factory.mktemp("artifact") / "resnet20.pesto")
