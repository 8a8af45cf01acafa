"""Every accelerated layer of an exported ResNet-20 through the HLS C simulation, fed the int16
tensors the integer reference gives it on a real Fashion-MNIST image, bit-exact with group
skipping on and off. The embedded trained model when it is there (sw/pesto/assets), else a
randomly initialised one, ternarized, with 40% of its PE groups zeroed."""

from __future__ import annotations

import numpy as np
import pytest

from pesto.hls.sources import FMNIST_DIR, from_artifact

pytestmark = pytest.mark.xdist_group("hls")


def test_resnet20_every_layer_bit_exact(csim, tmp_path, artifact_path):
    work = from_artifact(artifact_path, csim.hw.lanes, images=1, dense=True)
    assert "Fashion-MNIST test images" in work.source
    assert len(work.shapes) >= 18   # ResNet-20: 18 accelerated 3x3 convs (the first conv stays on the host)
    run = csim.run(tmp_path, work.cases)
    assert run.failed == 0, run.output
    assert run.passed == 2 * len(work.shapes)
    for (layer, _, _), i in zip(work.shapes, range(0, len(work.cases), 2)):
        skip, dense = run.cases[work.cases[i].name], run.cases[work.cases[i + 1].name]
        assert skip.groups == work.cases[i].writes["NNZ"] and dense.groups == layer.out_channels * layer.groups
        assert skip.compute_cycles <= dense.compute_cycles
    sparse = [c for c in work.layers if c["nnz_groups"] < c["groups"]]
    assert sparse, "the exported model should have all-zero PE groups to skip"
    print(f"{len(work.shapes)} layers, {sum(c['nnz_groups'] for c in work.layers)}/"
          f"{sum(c['groups'] for c in work.layers)} non-zero groups")


def test_whole_network_through_the_driver(csim, artifact_path):
    """pesto.driver's Accelerator with the HLS engine as its backend: the same logits as the
    integer reference on real images, and per-layer counters from the engine."""
    from pesto.data.readers import read_fashion_mnist
    from pesto.driver.accelerator import Accelerator
    from pesto.driver.backends import BusBackend
    from pesto.hls.bus import CSimBus, identity_probe
    images = read_fashion_mnist(FMNIST_DIR, "test")[0][:2]
    with Accelerator(artifact_path, "ref") as ref:
        want = ref.execute(images)
    bus = CSimBus(csim.binary)
    identity_probe(bus)
    with Accelerator(artifact_path, BusBackend(bus, "hls-csim")) as acc:
        got = acc.execute(images)
        records = acc.records
    np.testing.assert_array_equal(got, want)
    assert len(records) >= 18 and all(r.stats for r in records.values())


def test_cli_renders_an_artifact_project(artifact_path, tmp_path, capsys):
    import json
    from pesto.cli import main
    out = tmp_path / "prj"
    assert main(["hls", str(artifact_path), "-o", str(out), "--no-dense"]) == 0
    assert "18 layers, 18 test cases" in capsys.readouterr().out
    record = json.loads((out / "pesto_hls.json").read_text())
    assert len(record["layers"]) == 18 and len(record["vectors"]) == 18
    assert all((out / v).is_file() for v in record["vectors"])
