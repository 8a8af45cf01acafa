"""Issue 11's simulation-speed benchmark: the fast C++ harness (pesto.sim.fast.FastSim) against
the cocotb path (pesto.sim.server.SimAccelerator on Verilator), side by side in one run on the
same work.

Both run the default build of pesto_accel through the same driver code (protocol.run_layer,
Accelerator.execute): the three table 7 layers with group skipping off and on, and test images
of the embedded ResNet-20 (28x28 Fashion-MNIST) through the whole network. Every output is
checked bit for bit against the integer reference, and the two paths' outputs, engine counters
(CYCLES, COMPUTE_CYCLES, GROUPS_ISSUED) and simulated clock cycles against each other. Speed is
simulated clock cycles (register traffic and streams included) per second of wall time, and
per second of CPU time (this process plus, for cocotb, the simulator's processes): the machine
is shared, so the wall figures depend on its load, which is recorded beside them. Also: the
model alone (idle cycles), and the time of one register read next to a bare pipe round trip to
a subprocess (what a subprocess transport would cost before it simulated anything).

    python benchmarks/rtl/fastsim.py                   # ~3 minutes on the shared 2-core machine
    python benchmarks/rtl/fastsim.py --quick           # one layer each, one image

Writes benchmarks/rtl/results/fastsim.{json,md} and fastsim.png.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shlex
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pesto.driver import Accelerator
from pesto.driver.protocol import connect, run_layer
from pesto.reference import network
from pesto.reference.layer import run_conv
from pesto.sim import open_sim
from pesto.sim.measure import TABLE7, table7_case
from pesto.util import atomic_write_bytes, atomic_write_text

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from speedup import git_describe, rtl_fingerprint  # noqa: E402  (the RTL benchmark's provenance helpers)

CHECKPOINT = HERE.parents[1] / "sw" / "pesto" / "assets" / "resnet20_fmnist_wpc.pt"
PATHS = {"fast": "verilator", "cocotb": "cocotb-verilator"}  # pesto.sim.SIM_BUSES names
TARGET_CYCLES_PER_S = 1e6
TARGET_RATIO = 30.0


def _group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in process group ``pgid`` (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # after "pid (comm)": state ppid pgrp ... utime stime
            total += int(fields[11]) + int(fields[12])
    return total / tick


class Meter:
    """Wall and CPU seconds and simulated cycles spent by ``bus`` inside ``with meter:`` blocks."""

    def __init__(self, bus):
        self.bus = bus
        proc = getattr(bus, "_proc", None)  # SimAccelerator's launcher: the simulator's process group
        self.pgid = proc.pid if proc is not None else None

    def cpu(self) -> float:
        return time.process_time() + (_group_cpu_seconds(self.pgid) if self.pgid else 0.0)

    def __enter__(self):
        self.t0, self.c0, self.n0 = time.perf_counter(), self.cpu(), self.bus.now()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        self.cpu_s = self.cpu() - self.c0
        self.cycles = self.bus.now() - self.n0


def layer_cases(quick: bool):
    names = [TABLE7[0].name] if quick else [t.name for t in TABLE7]
    cases = []
    for name in names:
        layer, x = table7_case(name, seed=11)
        cases += [(f"{name} dense", layer, x, False), (f"{name} skip", layer, x, True)]
    return cases


def embedded_artifact(images: np.ndarray):
    from pesto.export import export_model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return export_model(str(CHECKPOINT), calib_images=images, verify=0)


def run_path(path: str, cases, art, images, repeats: int, reads: int) -> dict:
    """Everything on one simulated bus; per case: outputs, counters, cycles, wall, CPU."""
    t0 = time.perf_counter()
    bus = open_sim(PATHS[path], timeout_s=1200).open()
    try:
        startup = time.perf_counter() - t0
        hw = connect(bus)
        rows = []
        for name, layer, x, skip in tqdm(cases, desc=f"{path}: layers", leave=False):
            want = run_conv(x, layer)
            meter = Meter(bus)
            with meter:
                for _ in range(repeats):
                    y, stats = run_layer(bus, layer, x, hw, skip=skip, timeout_s=600)
            rows.append({"case": name, "cycles": meter.cycles / repeats, "wall_s": meter.wall / repeats,
                         "cpu_s": meter.cpu_s / repeats, "repeats": repeats,
                         "bit_exact": bool(np.array_equal(y, want)), "counters": list(vars(stats).values()),
                         "outputs": y})
        with Accelerator(art, backend="sim", sim=bus) as acc:
            meter = Meter(bus)
            with meter:
                logits = acc.execute(images)
            records = {k: [list(vars(s).values()) for s in r.stats] for k, r in acc.records.items()}
        rows.append({"case": f"network x{len(images)}", "cycles": meter.cycles, "wall_s": meter.wall,
                     "cpu_s": meter.cpu_s, "repeats": 1,
                     "bit_exact": bool(np.array_equal(logits, network.run(art, images))),
                     "counters": records, "outputs": logits})
        t = time.perf_counter()
        for _ in range(reads):
            bus.read(0x10)
        read_us = (time.perf_counter() - t) / reads * 1e6
        idle = None
        if hasattr(bus, "run"):  # the model alone, no transaction (the fast harness only)
            n = 2_000_000
            t, c = time.perf_counter(), time.thread_time()
            bus.run(n)
            idle = {"cycles": n, "cycles_per_s_wall": n / (time.perf_counter() - t),
                    "cycles_per_s_cpu": n / (time.thread_time() - c)}
    finally:
        bus.close()
    for r in rows:
        r["cycles_per_s_wall"] = r["cycles"] / r["wall_s"]
        r["cycles_per_s_cpu"] = r["cycles"] / r["cpu_s"] if r["cpu_s"] > 0 else float("nan")
    return {"simulator": PATHS[path], "startup_s": startup, "rows": rows, "read_us": read_us, "idle": idle}


def pipe_round_trip_us(n: int = 2000) -> float:
    """A 16-byte request and answer through pipes to a subprocess that only echoes them."""
    echo = "import os\nwhile True:\n    b = os.read(0, 16)\n    if not b: break\n    os.write(1, b)\n"
    proc = subprocess.Popen([sys.executable, "-c", echo], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    try:
        msg = b"x" * 16
        t = time.perf_counter()
        for _ in range(n):
            os.write(proc.stdin.fileno(), msg)
            got = b""
            while len(got) < 16:
                got += os.read(proc.stdout.fileno(), 16 - len(got))
        return (time.perf_counter() - t) / n * 1e6
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


def compare(fast: dict, cocotb: dict) -> list[dict]:
    rows = []
    for f, c in zip(fast["rows"], cocotb["rows"]):
        assert f["case"] == c["case"]
        same_out = bool(np.array_equal(f["outputs"], c["outputs"]))
        rows.append({
            "case": f["case"], "cycles": f["cycles"],
            "fast_cycles_per_s_wall": f["cycles_per_s_wall"], "cocotb_cycles_per_s_wall": c["cycles_per_s_wall"],
            "fast_cycles_per_s_cpu": f["cycles_per_s_cpu"], "cocotb_cycles_per_s_cpu": c["cycles_per_s_cpu"],
            "fast_wall_s": f["wall_s"], "cocotb_wall_s": c["wall_s"],
            "ratio_wall": f["cycles_per_s_wall"] / c["cycles_per_s_wall"],
            "ratio_cpu": f["cycles_per_s_cpu"] / c["cycles_per_s_cpu"],
            "bit_exact_vs_reference": f["bit_exact"] and c["bit_exact"],
            "same_outputs": same_out, "same_counters": f["counters"] == c["counters"],
            "same_cycles": f["cycles"] == c["cycles"],
        })
    return rows


def totals(rows: list[dict], prefix: str) -> dict:
    cycles = sum(r["cycles"] for r in rows)
    wall = sum(r["wall_s"] for r in rows)
    cpu = sum(r["cpu_s"] for r in rows)
    return {f"{prefix}_cycles": cycles, f"{prefix}_wall_s": wall, f"{prefix}_cpu_s": cpu,
            f"{prefix}_cycles_per_s_wall": cycles / wall, f"{prefix}_cycles_per_s_cpu": cycles / cpu}


def markdown(result: dict) -> str:
    s, m = result["summary"], result["machine"]
    lines = [
        "# Fast RTL simulation: the C++ harness against cocotb (Verilator, default build)", "",
        f"Command: `{result['command']}` ({result['date']}, git {result['git']}, RTL {result['rtl']}).",
        f"Machine: {m['cpus']} CPUs ({m['cpu']}), shared: load average {m['load_before'][0]:.1f} before, "
        f"{m['load_after'][0]:.1f} after. Wall rates depend on that load; CPU rates (cycles per CPU second "
        f"of the processes that simulate) do much less.", "",
        "| work | cycles | fast M cycles/s (wall) | cocotb k cycles/s (wall) | ratio (wall) | fast M cycles/s (CPU) | "
        "cocotb k cycles/s (CPU) | ratio (CPU) | bit-exact | same outputs, counters, cycles |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        same = "yes" if r["same_outputs"] and r["same_counters"] and r["same_cycles"] else "**no**"
        lines.append(f"| {r['case']} | {r['cycles']:.0f} | {r['fast_cycles_per_s_wall'] / 1e6:.2f} | "
                     f"{r['cocotb_cycles_per_s_wall'] / 1e3:.1f} | {r['ratio_wall']:.0f}x | "
                     f"{r['fast_cycles_per_s_cpu'] / 1e6:.2f} | {r['cocotb_cycles_per_s_cpu'] / 1e3:.1f} | "
                     f"{r['ratio_cpu']:.0f}x | {'yes' if r['bit_exact_vs_reference'] else '**no**'} | {same} |")
    lines.append(f"| **all** | {s['fast_cycles']:.0f} | **{s['fast_cycles_per_s_wall'] / 1e6:.2f}** | "
                 f"{s['cocotb_cycles_per_s_wall'] / 1e3:.1f} | **{s['ratio_wall']:.0f}x** | "
                 f"**{s['fast_cycles_per_s_cpu'] / 1e6:.2f}** | {s['cocotb_cycles_per_s_cpu'] / 1e3:.1f} | "
                 f"**{s['ratio_cpu']:.0f}x** | {'yes' if s['all_bit_exact'] else '**no**'} | "
                 f"{'yes' if s['all_identical'] else '**no**'} |")
    idle = result["fast"]["idle"]
    lines += [
        "",
        f"The model alone (fast harness, {idle['cycles']} idle cycles): {idle['cycles_per_s_wall'] / 1e6:.2f} M cycles/s "
        f"wall, {idle['cycles_per_s_cpu'] / 1e6:.2f} M cycles/s CPU. Startup: fast {result['fast']['startup_s']:.1f} s, "
        f"cocotb {result['cocotb']['startup_s']:.1f} s (builds cached).",
        f"One register read: fast {result['fast']['read_us']:.1f} us, cocotb {result['cocotb']['read_us']:.0f} us; a "
        f"bare 16-byte pipe round trip to a subprocess: {result['pipe_round_trip_us']:.1f} us.", "",
        "Targets: fast harness >= 1 M cycles/s: per CPU second "
        f"{'met' if s['target_cycles_met_cpu'] else 'NOT met'} ({s['fast_cycles_per_s_cpu'] / 1e6:.2f} M), per wall "
        f"second {'met' if s['target_cycles_met_wall'] else 'NOT met'} ({s['fast_cycles_per_s_wall'] / 1e6:.2f} M at "
        f"load {m['load_before'][0]:.1f} on {m['cpus']} CPUs); >= 30x the cocotb path: "
        f"{'met' if s['target_ratio_met'] else 'NOT met'} (wall {s['ratio_wall']:.0f}x, CPU {s['ratio_cpu']:.0f}x).",
        "", "![cycles per second](fastsim.png)",
    ]
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(9, 4))
    xs = np.arange(len(rows))
    for i, (key, label) in enumerate((("fast_cycles_per_s_wall", "fast harness, wall"),
                                      ("fast_cycles_per_s_cpu", "fast harness, CPU"),
                                      ("cocotb_cycles_per_s_wall", "cocotb, wall"),
                                      ("cocotb_cycles_per_s_cpu", "cocotb, CPU"))):
        ax.bar(xs + (i - 1.5) * 0.2, [r[key] for r in rows], 0.2, label=label)
    ax.axhline(TARGET_CYCLES_PER_S, color="k", ls="--", lw=1, label="1 M cycles/s target")
    ax.set_yscale("log")
    ax.set_ylim(top=3e7)  # room for the legend above the bars
    ax.set_xticks(xs, [r["case"] for r in rows], rotation=20, ha="right")
    ax.set_ylabel("simulated cycles per second")
    ax.set_title(f"pesto_accel in Verilator: fast harness {result['summary']['ratio_wall']:.0f}x cocotb (wall), "
                 f"load {result['machine']['load_before'][0]:.1f} on {result['machine']['cpus']} CPUs")
    ax.legend(fontsize=8, ncol=3, loc="upper center")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one table 7 layer, one image")
    p.add_argument("--images", type=int, default=2, help="test images through the network (default 2)")
    p.add_argument("--repeats", type=int, default=5, help="runs of each layer on the fast harness (default 5)")
    p.add_argument("--out", type=Path, default=HERE / "results")
    p.add_argument("--replot", action="store_true", help="only redraw fastsim.png from --out's fastsim.json")
    args = p.parse_args(argv)
    if args.replot:
        plot(json.loads((args.out / "fastsim.json").read_text()), args.out / "fastsim.png")
        return 0
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    t0 = time.time()
    from pesto.data import load_splits
    _, test = load_splits("fashion-mnist", augment=False)
    images = test.images[:16].numpy()
    art = embedded_artifact(images)
    n_img = 1 if args.quick else args.images
    cases = layer_cases(args.quick)
    load_before = os.getloadavg()
    rtl = rtl_fingerprint()
    fast = run_path("fast", cases, art, images[:n_img], repeats=args.repeats, reads=5000)
    cocotb = run_path("cocotb", cases, art, images[:n_img], repeats=1, reads=300)
    if rtl_fingerprint() != rtl:
        raise SystemExit("the RTL changed while the benchmark ran: run it again")
    rows = compare(fast, cocotb)
    summary = {**totals(fast["rows"], "fast"), **totals(cocotb["rows"], "cocotb")}
    summary.update(
        ratio_wall=summary["fast_cycles_per_s_wall"] / summary["cocotb_cycles_per_s_wall"],
        ratio_cpu=summary["fast_cycles_per_s_cpu"] / summary["cocotb_cycles_per_s_cpu"],
        all_bit_exact=all(r["bit_exact_vs_reference"] for r in rows),
        all_identical=all(r["same_outputs"] and r["same_counters"] and r["same_cycles"] for r in rows))
    summary["target_cycles_met_cpu"] = summary["fast_cycles_per_s_cpu"] >= TARGET_CYCLES_PER_S
    summary["target_cycles_met_wall"] = summary["fast_cycles_per_s_wall"] >= TARGET_CYCLES_PER_S
    summary["target_ratio_met"] = min(summary["ratio_wall"], summary["ratio_cpu"]) >= TARGET_RATIO
    for path in (fast, cocotb):
        for r in path["rows"]:
            del r["outputs"], r["counters"]
    result = {
        "command": "python benchmarks/rtl/" + " ".join([Path(sys.argv[0]).name] + [shlex.quote(a) for a in sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "git": git_describe(), "rtl": rtl,
        "machine": {"host": platform.node(), "cpus": os.cpu_count(), "cpu": cpu_name(),
                    "load_before": load_before, "load_after": os.getloadavg()},
        "pipe_round_trip_us": pipe_round_trip_us(), "summary": summary, "rows": rows,
        "fast": fast, "cocotb": cocotb, "seconds": round(time.time() - t0, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "fastsim.json", json.dumps(result, indent=2, default=float) + "\n")
    md = markdown(result)
    atomic_write_text(args.out / "fastsim.md", md + "\n")
    plot(result, args.out / "fastsim.png")
    print(md)
    print(f"saved {args.out}/fastsim.json, fastsim.md, fastsim.png ({result['seconds']} s)")
    return 0 if summary["all_bit_exact"] and summary["all_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
