"""The HLS C simulation, built once per pytest worker: every test that runs it is in the xdist
group "hls", so they share one worker and one g++ build of the rendered kernel + testbench.
The testbench reads its vectors from files, so one binary runs every case."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from pesto.hls import HLS_DEFAULT, compile_tb, render_project, run_tb, write_vectors
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
