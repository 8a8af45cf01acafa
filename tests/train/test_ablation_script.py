"""The table 3 / table 6 / lambda-sweep benchmark script, on a tiny real-data budget."""

import importlib.util
import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"),
                                reason="dataset-fashion-mnist not installed")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "training" / "ablation.py"


def _ablation():
    spec = importlib.util.spec_from_file_location("ablation", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_ablation_writes_tables_and_judges_targets_from_its_own_runs(tmp_path):
    abl = _ablation()
    out, runs = tmp_path / "out", tmp_path / "runs"
    args = ["--subset", "128", "--epochs", "1", "--milestones", "", "--test-subset", "128", "--batch-size", "32",
            "--modes", "fp,naive,wpc", "--cgs", "16,8", "--lambdas", "0.002,0.02", "--timing-steps", "2",
            "--runs", str(runs), "--out", str(out)]
    assert abl.main(args) == 0
    res = json.loads((out / "ablation.json").read_text())
    # one checkpoint per (mode, Cg, lambda); the table 3 lambda (0.002) is shared with the sweep
    assert sorted(p.name for p in runs.iterdir()) == sorted([
        "fp_cg16.pt", "naive_cg16_lam0.002.pt", "naive_cg16_lam0.02.pt", "wpc_cg16_lam0.002.pt",
        "wpc_cg16_lam0.02.pt", "wpc_cg8_lam0.002.pt"])
    assert [r["cg"] for r in res["cg_sweep"]] == [16, 8]
    assert [r["lambda"] for r in res["lambda_sweep"]["wpc"]] == [0.002, 0.02]
    # the verdicts follow from the numbers in the same file
    rows = {r["mode"]: r for r in res["ablation"]}
    gap = rows["fp"]["test_acc"] - rows["wpc"]["test_acc"]
    first = res["targets"][0]
    assert first["met"] == (gap <= 1.0 and rows["wpc"]["compression_rate"] >= 20)
    assert f"gap {gap:.2f} points" in first["value"]
    assert res["step_time"]["steps"] == 2 and res["step_time"]["fp_step_s"] > 0
    md = (out / "ablation.md").read_text()
    for heading in ("## Table 3 ablation", "## Table 6 PE-group size sweep", "## Lambda sweep", "## Targets"):
        assert heading in md
    assert {p.name for p in out.iterdir()} == {"ablation.json", "ablation.md", "weight_hist.png", "tradeoff.png"}
    # run again: every run resumes finished, nothing retrains, the same table comes out
    stamps = {p.name: p.stat().st_mtime_ns for p in runs.iterdir()}
    assert abl.main(args[:-6] + ["--timing-steps", "2", "--runs", str(runs), "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "ablation.json").read_text())
    assert [r["test_acc"] for r in again["ablation"]] == [r["test_acc"] for r in res["ablation"]]
    assert {p.name: p.stat().st_mtime_ns for p in runs.iterdir()} == stamps
