"""`pesto bench` end to end on the accelerator RTL: table 7, a sparsity sweep, the outputs."""

from __future__ import annotations

import csv
import json

import pytest

from pesto.cli import main

pytestmark = [pytest.mark.sim, pytest.mark.xdist_group("driver-sim")]

PNG = b"\x89PNG\r\n\x1a\n"


def test_table7(tmp_path, capsys):
    # smaller inputs than CIFAR's 32/16/8 keep it cheap; the weights are table 7's
    assert main(["bench", "table7", "-o", str(tmp_path), "--input-hw", "8", "6", "4"]) == 0
    printed = capsys.readouterr().out
    assert "| stage1 |" in printed and "seed (table 7)" in printed
    data = json.loads((tmp_path / "table7.json").read_text())
    rows = {r["layer"]: r for r in data["rows"]}
    for name, nnz, groups, seed in (("stage1", 9, 16, 1.56), ("stage2", 33, 64, 1.69), ("stage3", 119, 256, 1.73)):
        r = rows[name]
        assert (r["nnz_groups"], r["groups"], r["seed_speedup"]) == (nnz, groups, seed)
        assert r["groups_issued_skip"] == nnz and r["groups_issued_dense"] == groups
        assert r["speedup_ideal"] == pytest.approx(groups / nnz)
        assert 1.0 < r["speedup"] <= r["speedup_ideal"] * 1.05
        assert r["efficiency"] == pytest.approx(r["speedup"] / r["speedup_ideal"])
    with open(tmp_path / "table7.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 3
    # flat columns: the cycle model's parts are columns of their own, no cell holds a Python repr
    assert int(table[0]["model_skip.issue"]) == rows["stage1"]["model_skip"]["issue"]
    assert table[0]["shape"] == "16x16x3x3"
    assert not any(c.startswith(("{", "[")) or "'" in c for r in table for c in r.values())
    assert (tmp_path / "table7.png").read_bytes()[:8] == PNG
    assert data["clock_mhz"] == 100.0 and "pesto_accel" in data["hardware"]


def test_sparsity_sweep(tmp_path):
    assert main(["bench", "sweep", "-o", str(tmp_path), "--shape", "16x32x3x3", "--sparsity", "0", "0.75",
                 "--input-hw", "4"]) == 0
    rows = json.loads((tmp_path / "sweep.json").read_text())["rows"]
    assert [r["nnz_groups"] for r in rows] == [32, 8]
    assert rows[0]["speedup"] == pytest.approx(1.0, abs=0.02)       # nothing to skip
    assert rows[1]["speedup"] > 2.0                                  # ideal 4x
    assert (tmp_path / "sweep.png").read_bytes()[:8] == PNG


@pytest.mark.parametrize("argv, message", [
    (["bench", "sweep", "--shape", "16x16x3"], "N x C x K x K"),
    (["bench", "sweep", "--sparsity", "1.0"], "expected a finite number >= 0 and < 1"),
    (["bench", "artifact", "missing.pesto"], "does not exist"),
])
def test_bad_options(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
