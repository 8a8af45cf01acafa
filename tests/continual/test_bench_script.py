"""The Chapter 5 benchmark script on a tiny real-data budget: tables, ratios and verdicts from its runs."""

import importlib.util
import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"),
                                reason="dataset-fashion-mnist not installed")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "continual" / "bench_continual.py"


def test_benchmark_writes_tables_ratios_and_plots(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_continual", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = ["--learners", "simsiam", "--methods", "lump", "ptlf", "multitask", "--seeds", "0", "--steps-per-task", "2",
            "--tasks", "0,1,2,3,4/5,6,7,8,9",
            "--batch-size", "16", "--proj-dim", "16", "--buffer-size", "16", "--bank-per-task", "32", "--test-per-task", "32",
            "--timing-points", "2", "--no-progress", "--out", str(tmp_path)]
    assert bench.main(args) == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [
        "simsiam_lump_s0.json", "simsiam_multitask_s0.json", "simsiam_ptlf_s0.json"]
    s = json.loads((tmp_path / "continual.json").read_text())
    runs = {k: json.loads((tmp_path / "runs" / f"{k}.json").read_text()) for k in ("simsiam_lump_s0", "simsiam_ptlf_s0")}
    # the ratios are those of the two runs' own totals
    r = s["table22"]["simsiam"]["ptlf"]
    assert 0.3 < r["side_by_side_steps"]["mean"] < 1.5 and r["side_by_side"]["mean"] >= r["side_by_side_steps"]["mean"]
    p, l = runs["simsiam_ptlf_s0"]["totals"], runs["simsiam_lump_s0"]["totals"]
    assert r["bwd_flops"]["mean"] == pytest.approx(p["bwd_flops"] / l["bwd_flops"]) and r["bwd_flops"]["mean"] < 1.0
    assert r["memory"]["mean"] == pytest.approx(p["memory_bytes_mean"] / l["memory_bytes_mean"])
    assert r["time"]["mean"] == pytest.approx(p["cpu_s"] / l["cpu_s"])
    assert 0 < r["held"]["bwd_flops"] <= r["bwd_flops"]["mean"] + 1e-9   # holding the final set from the start saves more
    verdicts = {t["target"]: t["met"] for t in s["targets"]}
    assert verdicts["backward FLOPs <= 0.7x LUMP"] == (r["bwd_flops"]["mean"] <= 0.7)
    assert verdicts["time <= 0.9x LUMP"] == (r["side_by_side"]["mean"] <= 0.9)
    assert s["table21"]["simsiam"]["multitask"]["forgetting"] is None
    assert len(s["runs"]["simsiam_lump_s0"]["acc"]) == 2 and len(s["runs"]["simsiam_multitask_s0"]["acc"]) == 1
    assert runs["simsiam_ptlf_s0"]["totals"]["steps"] == 4
    assert json.loads((tmp_path / "runs" / "simsiam_multitask_s0.json").read_text())["totals"]["steps"] == 4
    assert {f.name for f in tmp_path.glob("*.png")} == {"acc_matrix_simsiam.png", "freezing_simsiam.png"}
    assert "Table 22 analogue" in (tmp_path / "continual.md").read_text()
    assert bench.main(args + ["--report-only"]) == 0          # a second call re-uses the runs
