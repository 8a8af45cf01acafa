"""`pesto bench artifact`: every accelerated layer of an exported network on the RTL."""

from __future__ import annotations

import json

import pytest

from pesto.cli import main

pytestmark = [pytest.mark.sim, pytest.mark.xdist_group("driver-sim")]


def test_bench_artifact(artifact_path, art, tmp_path, capsys):
    assert main(["bench", "artifact", str(artifact_path), "-o", str(tmp_path)]) == 0
    assert "end to end (18 accelerated layers, per image)" in capsys.readouterr().out
    data = json.loads((tmp_path / f"artifact_{artifact_path.stem}.json").read_text())
    rows, e = data["rows"], data["end_to_end"]
    assert [r["layer"] for r in rows] == [layer.name for layer in art.layers]
    assert rows[0]["input_hw"] == [12, 12] and rows[-1]["input_hw"] == [3, 3]
    assert e["cycles_skip"] == pytest.approx(sum(r["cycles_skip"] for r in rows))
    assert e["cycles_skip"] < e["cycles_dense"]  # half of the PE groups are zero
    assert e["us_per_image_skip"] == pytest.approx(e["cycles_skip"] / 100)
    assert (tmp_path / f"artifact_{artifact_path.stem}.png").stat().st_size > 0
