"""Issue 4's benchmark: what group skipping buys on the accelerator RTL, and what it costs on
the xc7z020.

For the three ResNet-20 layers of the dissertation's table 7 it runs the engine (Verilator,
through the same driver protocol the board uses) with group skipping off (the dense-ternary
baseline, same engine) and on, checks both bit for bit against the integer reference, and
reports COMPUTE_CYCLES / CYCLES, the measured speedup beside the ideal G/G_nz and the seed's,
PE utilisation and GOPS at 100 MHz. It sweeps group sparsity 0-95% on each layer (plot), and
adds yosys synth_xilinx resource counts against the xc7z020.

    python benchmarks/rtl/speedup.py                 # ~4 minutes of simulation + yosys (cached)
    python benchmarks/rtl/speedup.py --quick         # 2 placements, 4 sweep points
    python benchmarks/rtl/speedup.py -P NUM_PE=16    # another build: results/speedup-NUM_PE16.*

Writes benchmarks/rtl/results/speedup.{json,md} and speedup_vs_sparsity.png, and keeps the
yosys result in hw/synth/results/pesto_accel.json (see pesto.sim.synth).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pesto.driver.protocol import check_identity
from pesto.sim.measure import CLOCK_MHZ, TABLE7, make_layer, measure_layer, peak_gops, random_input, table7_case
from pesto.sim.build import rtl_sources
from pesto.sim.server import SimAccelerator
from pesto.sim.synth import XC7Z020, record, synthesize
from pesto.util import atomic_write_text

HERE = Path(__file__).resolve().parent
SWEEP = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
QUICK_SWEEP = (0.0, 0.5, 0.8, 0.95)
TARGET_EFFICIENCY = 0.95


def rtl_fingerprint() -> str:
    """Hash of the RTL sources: simulation and synthesis must measure the same design."""
    h = hashlib.sha256()
    for src in rtl_sources():
        h.update(src.name.encode() + src.read_bytes())
    return h.hexdigest()[:16]


def git_describe() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "hw/rtl"], cwd=HERE.parents[1],
                               capture_output=True, text=True, check=True).stdout.strip()
        return rev + (" (hw/rtl modified)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_table7(bus, hw, placements: int, seed: int) -> list[dict]:
    """Each table 7 layer with ``placements`` random choices of which groups are non-zero
    (table 7 gives only their number)."""
    rows = []
    jobs = [(t, k) for t in TABLE7 for k in range(placements)]
    for t, k in tqdm(jobs, desc="table 7 layers", leave=False):
        layer, x = table7_case(t.name, seed=seed + 100 * k)
        row = measure_layer(bus, layer, x, hw)
        row.update(stage=t.name, placement=k, seed_speedup=t.seed_speedup)
        rows.append(row)
    return rows


def bound_speedup(row: dict) -> float:
    return row["model_dense"]["stream_bound"] / row["model_skip"]["stream_bound"]


def summarize_table7(rows: list[dict]) -> list[dict]:
    out = []
    for t in TABLE7:
        rs = [r for r in rows if r["stage"] == t.name]
        sp = np.array([r["speedup"] for r in rs])
        eff = sp / t.ideal
        bound = np.array([bound_speedup(r) for r in rs])
        out.append({
            "layer": t.name, "shape": rs[0]["shape"], "input": rs[0]["input"], "groups": t.groups,
            "nnz_groups": t.nnz_groups, "placements": len(rs),
            "compute_cycles_dense": float(np.mean([r["compute_cycles_dense"] for r in rs])),
            "compute_cycles_skip": float(np.mean([r["compute_cycles_skip"] for r in rs])),
            "cycles_dense": float(np.mean([r["cycles_dense"] for r in rs])),
            "cycles_skip": float(np.mean([r["cycles_skip"] for r in rs])),
            "speedup_mean": float(sp.mean()), "speedup_min": float(sp.min()), "speedup_max": float(sp.max()),
            "speedup_total_mean": float(np.mean([r["speedup_total"] for r in rs])),
            "speedup_ideal": t.ideal, "efficiency_mean": float(eff.mean()), "efficiency_min": float(eff.min()),
            "placements_meeting_target": int((eff >= TARGET_EFFICIENCY).sum()),
            "stream_bound_speedup_mean": float(bound.mean()),
            "efficiency_vs_bound_mean": float((sp / bound).mean()),
            "utilization_dense": float(np.mean([r["utilization_dense"] for r in rs])),
            "utilization_skip": float(np.mean([r["utilization_skip"] for r in rs])),
            "gops_dense": float(np.mean([r["gops_dense"] for r in rs])),
            "gops_skip": float(np.mean([r["gops_skip"] for r in rs])),
            "gops_compute_skip": float(np.mean([r["gops_compute_skip"] for r in rs])),
            "dense_macs": rs[0]["dense_macs"], "seed_speedup": t.seed_speedup,
        })
    return out


def run_sweep(bus, hw, points, seed: int) -> list[dict]:
    rows = []
    jobs = [(t, gs) for t in TABLE7 for gs in points]
    for t, gs in tqdm(jobs, desc="group sparsity sweep", leave=False):
        layer = make_layer(t.channels, t.channels, 3, 16, group_sparsity=gs, seed=seed + int(gs * 1000),
                           name=f"{t.name}@{gs:.2f}")
        if layer.nnz_groups == 0:
            continue
        x = random_input(t.channels, t.size, t.size, seed=seed + 1)
        row = measure_layer(bus, layer, x, hw)
        row.update(stage=t.name, target_sparsity=gs)
        rows.append(row)
    return rows


def describe_build(result: dict) -> str:
    params = result.get("parameters") or {}
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "default PYNQ-Z1 build"


def markdown(result: dict, png: str) -> str:
    hw, syn = result["hw"], result["synth"]
    pct = lambda v: f"{100 * v:.1f}%"  # noqa: E731
    out = ["# RTL speedup benchmark (issue 4)", "",
           f"Command: `{result['command']}`  ",
           f"Simulator: {result['simulator']}; engine: {hw['num_pe']} PEs x {hw['lanes']} lanes "
           f"({describe_build(result)}); clock {CLOCK_MHZ:g} MHz; {result['date']}; {result['seconds']:.0f} s.  ",
           f"RTL: commit {result['git']}, sources sha256 {result['rtl']} (the same for simulation and synthesis).",
           "",
           "Every run below is bit-exact against the integer reference (pesto.reference.run_conv), with group",
           "skipping off (the dense-ternary baseline: the same engine issuing every group) and on.",
           "Speedup = COMPUTE_CYCLES off / on (last input beat to done); total = CYCLES off / on (start to done,",
           "stream loading included, which skipping does not shorten).", "",
           f"## Table 7 layers ({result['placements']} random placements of the non-zero groups each)", "",
           "| layer | weights | input | G | G_nz | compute cycles off | on | cycles off | on | speedup mean (min-max) "
           "| ideal G/G_nz | efficiency mean (min) | >= 95% | seed's | stream bound | vs bound | total | PE util off / on |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["table7_summary"]:
        out.append(
            f"| {r['layer']} | {tuple(r['shape'])} | {tuple(r['input'])} | {r['groups']} | {r['nnz_groups']} | "
            f"{r['compute_cycles_dense']:.0f} | {r['compute_cycles_skip']:.0f} | {r['cycles_dense']:.0f} | "
            f"{r['cycles_skip']:.0f} | {r['speedup_mean']:.3f}x ({r['speedup_min']:.2f}-{r['speedup_max']:.2f}) | "
            f"{r['speedup_ideal']:.3f}x | {pct(r['efficiency_mean'])} ({pct(r['efficiency_min'])}) | "
            f"{r['placements_meeting_target']}/{r['placements']} | {r['seed_speedup']:.2f}x | "
            f"{r['stream_bound_speedup_mean']:.3f}x | {pct(r['efficiency_vs_bound_mean'])} | "
            f"{r['speedup_total_mean']:.3f}x | {pct(r['utilization_dense'])} / {pct(r['utilization_skip'])} |")
    out += ["", "Cycle counts are means over the placements. *Stream bound*: the speedup the schedule allows once the",
            "output packet's (n, y, x) order at one 64-bit word per cycle is accounted for",
            "(pesto.sim.measure.cycle_model); *vs bound*: measured / stream bound. PE utilisation: issued lane",
            "operations / (NUM_PE x LANES x COMPUTE_CYCLES).", "",
            "Per placement:", "",
            "| layer | placement | compute off | compute on | issue-bound on | stream-bound on | speedup | efficiency |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["table7"]:
        out.append(f"| {r['stage']} | {r['placement']} | {r['compute_cycles_dense']} | {r['compute_cycles_skip']} | "
                   f"{r['model_skip']['issue']} | {r['model_skip']['stream_bound']} | {r['speedup']:.3f}x | "
                   f"{pct(r['efficiency'])} |")
    out += ["", "## Throughput at 100 MHz (dense-equivalent: 2 x MACs of the dense layer / time)", "",
            f"Array peak: {result['peak_gops']:.1f} GOPS ({hw['num_pe']} PEs x {hw['lanes']} lanes x 2 ops "
            f"x {CLOCK_MHZ:g} MHz); with skipping the dense-equivalent rate can exceed it.", "",
            "| layer | dense MACs | GOPS skip off | GOPS skip on | GOPS skip on, compute only |",
            "|---|---:|---:|---:|---:|"]
    for r in result["table7_summary"]:
        out.append(f"| {r['layer']} | {r['dense_macs']} | {r['gops_dense']:.1f} | {r['gops_skip']:.1f} | "
                   f"{r['gops_compute_skip']:.1f} |")
    out += ["", "## Speedup across group sparsity", "", f"![speedup vs group sparsity]({png})", "",
            "| layer | group sparsity | G_nz | speedup | ideal | efficiency | stream bound |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["sweep"]:
        out.append(f"| {r['stage']} | {pct(r['group_sparsity'])} | {r['nnz_groups']} | {r['speedup']:.3f}x | "
                   f"{r['speedup_ideal']:.3f}x | {pct(r['efficiency'])} | {bound_speedup(r):.3f}x |")
    out += ["", f"## yosys synth_xilinx -family xc7 ({syn['yosys']}), {describe_build(result)}", "",
            "| resource | used | xc7z020 | utilisation |", "|---|---:|---:|---:|"]
    for k, label in (("lut", "LUT"), ("ff", "FF"), ("bram36", "BRAM36"), ("dsp", "DSP48E1")):
        out.append(f"| {label} | {syn[k]:g} | {XC7Z020[k]} | {pct(syn['utilization'][k])} |")
    out += [f"| LUT as logic / as memory | {syn['lut_logic']} / {syn['lut_memory']} | | |",
            f"| CARRY4 | {syn['carry4']} | | |", "",
            f"LUT budget for the engine: 70% of the device ({0.7 * XC7Z020['lut']:.0f}): "
            f"{'fits' if syn['lut'] <= 0.7 * XC7Z020['lut'] else 'DOES NOT FIT'}.", ""]
    return "\n".join(out)


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    gs = np.linspace(0, 0.95, 200)
    ax.plot(100 * gs, 1 / (1 - gs), "k--", lw=1, label="ideal G / G_nz")
    for t, color in zip(TABLE7, ("tab:blue", "tab:orange", "tab:green")):
        rows = [r for r in result["sweep"] if r["stage"] == t.name]
        ax.plot([100 * r["group_sparsity"] for r in rows], [r["speedup"] for r in rows], "o-", color=color,
                label=f"{t.name} {t.channels}x{t.channels}x3x3 on {t.size}x{t.size}")
        ax.plot([100 * r["group_sparsity"] for r in rows], [bound_speedup(r) for r in rows], ":", color=color, lw=1)
    for t, color in zip(TABLE7, ("tab:blue", "tab:orange", "tab:green")):
        rows = [r for r in result["table7"] if r["stage"] == t.name]
        ax.plot([100 * r["group_sparsity"] for r in rows], [r["speedup"] for r in rows], "s", color=color,
                ms=5, alpha=0.6)
        ax.plot(100 * (1 - 1 / t.ideal), t.seed_speedup, "x", color=color, ms=9, mew=2)
    ax.plot([], [], "k:", lw=1, label="output-stream bound (cycle_model)")
    ax.plot([], [], "ks", ms=5, alpha=0.6, label="table 7 sparsity, random placements")
    ax.plot([], [], "kx", ms=9, mew=2, label="seed's FPGA (table 7)")
    ax.set_xlabel("group sparsity (%)")
    ax.set_ylabel("speedup, skipping on vs off (COMPUTE_CYCLES)")
    ax.set_yscale("log")
    ax.set_yticks([1, 1.5, 2, 3, 5, 10, 20])
    ax.get_yaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    hw = result["hw"]
    ax.set_title(f"pesto_accel RTL ({hw['num_pe']} PEs x {hw['lanes']} lanes): speedup from skipping zero PE groups",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--simulator", default="verilator", choices=("verilator", "icarus"))
    p.add_argument("--quick", action="store_true", help=f"sweep only {QUICK_SWEEP}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--placements", type=int, default=8,
                   help="random placements of the non-zero groups per table 7 layer")
    p.add_argument("-P", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="build parameter of pesto_accel (repeatable; default: the PYNQ-Z1 build)")
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args(argv)
    params = {}
    for item in args.param:
        name, _, value = item.partition("=")
        if not value:
            p.error(f"--param {item!r}: use NAME=VALUE")
        params[name] = int(value, 0)
    stem = "speedup" + "".join(f"-{k}{v}" for k, v in sorted(params.items()))
    t0 = time.time()
    rtl = rtl_fingerprint()
    with SimAccelerator(args.simulator, params, timeout_s=1200) as bus:
        hw = check_identity(bus)
        table7 = run_table7(bus, hw, 2 if args.quick else args.placements, args.seed)
        sweep = run_sweep(bus, hw, QUICK_SWEEP if args.quick else SWEEP, args.seed)
    synth = synthesize(params)
    if rtl_fingerprint() != rtl:
        raise SystemExit("the RTL changed while the benchmark ran (simulation and synthesis would describe "
                         "different designs): run it again")
    if not params:
        record(synth, "pesto_accel")  # lets the fit test skip yosys while the RTL stays as it is
    result = {
        "command": "python benchmarks/rtl/" + " ".join([Path(sys.argv[0]).name] + [shlex.quote(a) for a in sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "host": platform.node(),
        "simulator": args.simulator, "parameters": params, "rtl": rtl, "git": git_describe(), "hw": hw.__dict__, "clock_mhz": CLOCK_MHZ,
        "peak_gops": peak_gops(hw), "placements": 2 if args.quick else args.placements,
        "table7_summary": summarize_table7(table7), "table7": table7, "sweep": sweep, "synth": synth,
        "seconds": round(time.time() - t0, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / f"{stem}.json", json.dumps(result, indent=2, default=float))
    md = markdown(result, f"{stem}_vs_sparsity.png")
    atomic_write_text(args.out / f"{stem}.md", md)
    plot(result, args.out / f"{stem}_vs_sparsity.png")
    print(md)
    print(f"saved {args.out}/{stem}.json, {stem}.md, {stem}_vs_sparsity.png ({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
