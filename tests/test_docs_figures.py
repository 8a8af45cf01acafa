"""The README's results table is what benchmarks/readme_results.py renders from the committed
results JSON: a figure changes only with the results file it comes from."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_results_table_equals_the_committed_results():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "readme_results.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_the_check_notices_a_changed_figure(tmp_path, monkeypatch):
    import importlib.util
    spec = importlib.util.spec_from_file_location("readme_results", ROOT / "benchmarks" / "readme_results.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    results = mod.load()
    table = mod.render(results)
    results["asset"]["test_acc"] += 1.0
    assert mod.render(results) != table
    readme = (ROOT / "README.md").read_text()
    assert mod.rewrite(readme, table) == readme
