"""Issue 11's network-mode benchmark: accelerator v2 (hw/rtl/v2/, top pesto_accel_v2) running
whole networks from one start on the fast C++ harness (pesto.sim.fast.FastSim), every output
checked bit for bit against the integer reference (pesto.reference).

Cases:
* the embedded ResNet-20 (sw/pesto/assets, 28x28 Fashion-MNIST test images);
* a CIFAR-shaped ResNet-20 at 32x32x3 with random codes and the seed's table 3 group sparsity
  (25 % of every accelerated layer's PE groups zero, pesto.sim.networks.resnet_artifact);
* the sub-net switch: three random sub-nets (keep 90 / 60 / 30 % of the stored groups) over
  the embedded model's codes, one program, SUBNET written between images;
* the shape classes of issue 11 (SHAPES: 1x1 convs with one or two groups per output channel,
  stride 2, channel counts that divide nothing, > 90 % zero groups on 8x8 and 4x4 maps, all-zero
  channels), one conv each with random codes: its issue cycles skipping and dense against its
  G/G_nz and the cycle model.

For each network: cycles per image from the engine's CYCLES counter over a batch (input and
output streams included, host float layers not), images/s at 100 MHz, skip on and off (the
dense-ternary baseline runs the program's dense schedules on the same engine), the end-to-end
skip speedup beside two ideals (the network's G/G_nz, and the layer-weighted ideal: every conv
step at its dense cycles times its issued fraction), the per-step table (STEP_CYCLES /
STEP_ISSUE against the cycle model, pesto.hwspec.program), the switch cost, the simulator's
speed (fast harness against the cocotb path on the same v2 top and the same program), and the
yosys resources recorded for the v2 top (hw/synth/results/pesto_accel_v2.json).

    python benchmarks/rtl/network.py                   # ~5 minutes on the shared 2-core machine
    python benchmarks/rtl/network.py --quick           # fewer images, no cocotb comparison

Writes benchmarks/rtl/results/network.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from pesto.driver.protocol import connect, load_network, read_steps, run_network, select_subnet
from pesto.hwspec import REGMAP
from pesto.hwspec.program import ConvStep, compile_network
from pesto.sim import open_sim
from pesto.sim.build import V2_TOP
from pesto.sim.networks import ChainBuilder, chain_io, random_images, random_subnets, resnet_artifact
from pesto.sim.synth import RECORDS, XC7Z020
from pesto.util import atomic_write_text

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from speedup import git_describe  # noqa: E402  (the RTL benchmark's provenance helper)

CHECKPOINT = HERE.parents[1] / "sw" / "pesto" / "assets" / "resnet20_fmnist_wpc.pt"
FMNIST = Path("/usr/share/datasets/fashion-mnist")
CLOCK_MHZ = 100.0


def embedded_artifact(calib: int = 64):
    from pesto.data.readers import read_fashion_mnist
    from pesto.export import export_model
    images, labels = read_fashion_mnist(FMNIST, "test")
    images = np.asarray(images).reshape(-1, 1, 28, 28)
    return export_model(str(CHECKPOINT), calib_images=images[:calib], verify=0), images, np.asarray(labels)


def ideal(program, subnet: int = 0) -> dict:
    """G/G_nz of the accelerated layers, and the layer-weighted ideal speedup: each conv step's
    dense cycles scaled by its issued fraction, every other step as it is."""
    groups = issued = 0
    dense_total = weighted = 0.0
    for s, d, k in zip(program.steps, program.cycles(subnet, skip=False), program.cycles(subnet, skip=True)):
        if isinstance(s, ConvStep):
            g, i = int(s.stored.size), int(s.issue[subnet].sum())
            groups, issued = groups + g, issued + i
            dense_total += d["total"]
            weighted += d["total"] * i / g
        else:
            dense_total += d["total"]
            weighted += d["total"]
    return {"groups": groups, "issued": issued, "speedup_groups": groups / issued,
            "speedup_weighted": dense_total / weighted}


def measure(bus, hw, name: str, art, images: np.ndarray, batch: int, labels=None) -> dict:
    """One network, sub-net 0, skip on and off, bit-exact on ``images``."""
    t0 = time.perf_counter()
    prog = compile_network(art, hw, dense=True)
    load_network(bus, prog, hw, timeout_s=600)
    x, want = chain_io(art, images)
    out = {"name": name, "images": len(images), "input": [prog.input.channels, prog.input.h, prog.input.w], "steps": len(prog.steps),
           "conv_steps": sum(isinstance(s, ConvStep) for s in prog.steps), **ideal(prog)}
    for skip in (True, False):
        cycles = 0
        got = []
        for i in range(0, len(x), batch):
            y, st = run_network(bus, prog, x[i:i + batch], hw, subnet=0, skip=skip, timeout_s=600)
            got.append(y)
            cycles += st.cycles
        got = np.concatenate(got)
        key = "skip" if skip else "dense"
        out[f"bit_exact_{key}"] = bool(np.array_equal(got, want))
        out[f"cycles_per_image_{key}"] = cycles / len(x)
        out[f"images_per_s_{key}"] = CLOCK_MHZ * 1e6 * len(x) / cycles
        # the per-step table: one image, the counters of its run
        run_network(bus, prog, x[:1], hw, subnet=0, skip=skip, timeout_s=600)
        out[f"rows_{key}"] = [(s.name, s.op, s.cycles, s.issue_cycles) for s in read_steps(bus, prog)]
    out["speedup"] = out["cycles_per_image_dense"] / out["cycles_per_image_skip"]
    out["speedup_vs_groups_percent"] = 100 * out["speedup"] / out["speedup_groups"]
    out["speedup_vs_weighted_percent"] = 100 * out["speedup"] / out["speedup_weighted"]
    rows = []
    model = {True: prog.cycles(0, True), False: prog.cycles(0, False)}
    for i, s in enumerate(prog.steps):
        r = {"step": s.name, "op": s.op}
        for skip, key in ((True, "skip"), (False, "dense")):
            _, _, cyc, iss = out[f"rows_{key}"][i]
            r[f"cycles_{key}"], r[f"model_{key}"] = cyc, model[skip][i]["total"]
            if s.op == "conv":
                r[f"issue_{key}"], r[f"model_issue_{key}"] = iss, model[skip][i]["issue"]
        if isinstance(s, ConvStep):
            r["groups"], r["issued"] = int(s.stored.size), int(s.issue[0].sum())
            r["ideal"] = r["groups"] / r["issued"]
            r["speedup_issue"] = r["issue_dense"] / r["issue_skip"]
            r["issue_vs_ideal_percent"] = 100 * r["speedup_issue"] / r["ideal"]
        rows.append(r)
    del out["rows_skip"], out["rows_dense"]
    out["layers"] = rows
    if labels is not None:
        from pesto.reference import network
        logits = network.run_batched(art, images, batch_size=50)
        out["accuracy_percent"] = float(100 * (logits.argmax(1) == labels).mean())
    out["wall_s"] = time.perf_counter() - t0
    return out


# (name, C_in, map side, N, kernel, stride, group sparsity, Cg): one conv each
SHAPES = [
    ("1x1, one group per channel (every zero group an all-zero channel)", 16, 8, 64, 1, 1, 0.5, 16),
    ("1x1, two groups per channel", 32, 8, 48, 1, 1, 0.5, 16),
    ("3x3, stride 2", 32, 16, 64, 3, 2, 0.5, 16),
    ("3x3, channel counts that divide nothing (C 40, N 36, 10x10)", 40, 10, 36, 3, 1, 0.4, 8),
    ("3x3, 92 % zero groups on 8x8", 64, 8, 64, 3, 1, 0.92, 16),
    ("3x3, 92 % zero groups on 4x4", 64, 4, 64, 3, 1, 0.92, 16),
    ("1x1 stride 2, 90 % zero groups on 8x8 -> 4x4", 64, 8, 128, 1, 2, 0.9, 16),
]


def shape_class(bus, hw, spec, seed: int) -> dict:
    """One conv of a shape class, skip on and off: its issue cycles (STEP_ISSUE) against G/G_nz
    and the cycle model, bit-exact on two random inputs."""
    name, c, size, n, k, stride, sparsity, cg = spec
    b = ChainBuilder(c, size, size, seed=seed)
    y = b.conv(b.quantize(10), n, k, stride, relu=True, group_sparsity=sparsity, cg=cg)
    art = b.finish(y, name=name)
    r = measure(bus, hw, name, art, random_images(art, 2, seed=seed), 2)
    conv = next(row for row in r["layers"] if row["op"] == "conv")
    return {"name": name, "shape": f"{c}x{size}x{size} -> {n}, {k}x{k}, stride {stride}", "bit_exact":
            r["bit_exact_skip"] and r["bit_exact_dense"], **{key: conv[key] for key in (
                "groups", "issued", "ideal", "issue_skip", "issue_dense", "model_issue_skip", "model_issue_dense",
                "speedup_issue", "issue_vs_ideal_percent", "cycles_skip", "cycles_dense")}}


def switch_cost(bus, hw, base, images: np.ndarray) -> dict:
    """Three sub-nets in one program: each image's cycles with its sub-net selected just before
    it (a switch) and with the same sub-net run twice (no switch); every output bit-exact."""
    art = random_subnets(base, keep=(0.9, 0.6, 0.3), seed=1)
    prog = compile_network(art, hw)
    t0 = time.perf_counter()
    load_network(bus, prog, hw, timeout_s=600)
    load_cycles = bus.read(REGMAP.offset("CYCLES"))
    load_s = time.perf_counter() - t0
    rows, exact, deltas = [], True, []
    xs = {k: chain_io(art, images, subnet=k) for k in range(art.num_subnets)}
    for k in range(art.num_subnets):
        x, want = xs[k]
        for i in range(len(images)):
            prev = (k + 1) % art.num_subnets
            run_network(bus, prog, xs[prev][0][i], hw, subnet=prev)       # another sub-net ran last
            y1, s1 = run_network(bus, prog, x[i], hw, subnet=k)           # switch, then run
            y2, s2 = run_network(bus, prog, x[i], hw)                     # the same again, no switch
            exact &= bool(np.array_equal(y1, want[i]) and np.array_equal(y2, want[i]))
            deltas.append(s1.cycles - s2.cycles)
        i_prog = ideal(prog, k)
        rows.append({"subnet": k, "name": prog.names[k], "issued_groups": i_prog["issued"], "groups": i_prog["groups"],
                     "cycles_per_image": s2.cycles, "images_per_s": CLOCK_MHZ * 1e6 / s2.cycles})
    return {"subnets": rows, "bit_exact": exact, "switch_cycles_max": int(max(deltas)),
            "switch_cycles_min": int(min(deltas)), "switches": len(deltas),
            "switch_bus_writes": 1, "program_load_cycles": load_cycles, "program_load_wall_s": load_s,
            "program_words": len(prog.words())}


def sim_speed(simulator: str, art, images: np.ndarray) -> dict:
    """Simulated cycles per wall second on one network run of ``images`` (program load excluded)."""
    with open_sim(simulator, toplevel=V2_TOP) as bus:
        hw = connect(bus)
        prog = compile_network(art, hw)
        load_network(bus, prog, hw, timeout_s=3600)
        x, want = chain_io(art, images)
        t0, c0 = time.perf_counter(), time.process_time()
        y, st = run_network(bus, prog, x, hw, timeout_s=3600)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"simulator": simulator, "images": len(images), "cycles": st.cycles, "wall_s": wall,
            "cycles_per_s": st.cycles / wall, "bit_exact": bool(np.array_equal(y, want)),
            "process_cpu_s": cpu}


def synth_record() -> dict | None:
    path = RECORDS / f"{V2_TOP}.json"
    if not path.exists():
        return None
    r = json.loads(path.read_text())
    return {k: r[k] for k in ("lut", "ff", "bram36", "dsp", "seconds", "yosys") if k in r} | {
        "lut_percent": 100 * r["lut"] / XC7Z020["lut"], "bram_percent": 100 * r["bram36"] / XC7Z020["bram36"]}


def markdown(res: dict) -> str:
    L = [f"# Accelerator v2, network mode (`{res['command']}`)", "",
         f"RTL {res['git']}, {res['machine']}, {res['date']}. Cycles are the engine's CYCLES counter (input and "
         f"output streams included, host float layers not); images/s at {CLOCK_MHZ:g} MHz. Every output bit-exact "
         f"against pesto.reference: {'yes' if res['all_bit_exact'] else 'NO'}.", "",
         "| network | images | cycles/image skip | dense | images/s skip | dense | skip speedup | G/G_nz | "
         "layer-weighted ideal | speedup / G/G_nz | speedup / weighted |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n in res["networks"]:
        L.append(f"| {n['name']} | {n['images']} | {n['cycles_per_image_skip']:,.0f} | {n['cycles_per_image_dense']:,.0f} | "
                 f"{n['images_per_s_skip']:,.0f} | {n['images_per_s_dense']:,.0f} | {n['speedup']:.3f} | "
                 f"{n['speedup_groups']:.3f} | {n['speedup_weighted']:.3f} | {n['speedup_vs_groups_percent']:.1f} % | "
                 f"{n['speedup_vs_weighted_percent']:.1f} % |")
    for n in res["networks"]:
        L += ["", f"## Per step: {n['name']}", "",
              "| step | op | groups | issued | issue skip (model) | issue dense (model) | issue speedup / ideal | "
              "cycles skip (model) | cycles dense (model) |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in n["layers"]:
            if r["op"] == "conv":
                L.append(f"| {r['step']} | conv | {r['groups']} | {r['issued']} | {r['issue_skip']:,} ({r['model_issue_skip']:,}) | "
                         f"{r['issue_dense']:,} ({r['model_issue_dense']:,}) | {r['issue_vs_ideal_percent']:.1f} % | "
                         f"{r['cycles_skip']:,} ({r['model_skip']:,}) | {r['cycles_dense']:,} ({r['model_dense']:,}) |")
            else:
                L.append(f"| {r['step']} | {r['op']} | | | | | | {r['cycles_skip']:,} ({r['model_skip']:,}) | "
                         f"{r['cycles_dense']:,} ({r['model_dense']:,}) |")
    s = res["switch"]
    L += ["", "## Sub-net switch (three random sub-nets over the embedded model's codes, one program)", "",
          "| sub-net | name | issued / stored groups | cycles/image | images/s |", "|---:|---|---:|---:|---:|"]
    for r in s["subnets"]:
        L.append(f"| {r['subnet']} | {r['name']} | {r['issued_groups']} / {r['groups']} | {r['cycles_per_image']:,} | "
                 f"{r['images_per_s']:,.0f} |")
    L += ["", f"A switch is one AXI4-Lite write of SUBNET between two runs; an image run right after a switch took "
              f"{s['switch_cycles_min']}..{s['switch_cycles_max']} cycles more than the same image with no switch "
              f"({s['switches']} switches, bit-exact: {'yes' if s['bit_exact'] else 'NO'}). The program "
              f"({s['program_words']:,} 64-bit words: codes once, three schedules and output stages) loads once in "
              f"{s['program_load_cycles']:,} cycles."]
    if res.get("shapes"):
        L += ["", "## Shape classes (one conv each, random codes, issue cycles = STEP_ISSUE)", "",
              "| class | shape | issued / groups | G/G_nz | issue dense (model) | issue skip (model) | issue speedup | "
              "/ G/G_nz | bit-exact |", "|---|---|---:|---:|---:|---:|---:|---:|---|"]
        for r in res["shapes"]:
            L.append(f"| {r['name']} | {r['shape']} | {r['issued']} / {r['groups']} | {r['ideal']:.2f} | "
                     f"{r['issue_dense']:,} ({r['model_issue_dense']:,}) | {r['issue_skip']:,} ({r['model_issue_skip']:,}) | "
                     f"{r['speedup_issue']:.2f} | {r['issue_vs_ideal_percent']:.1f} % | {'yes' if r['bit_exact'] else 'NO'} |")
    if res.get("sim"):
        L += ["", "## Simulation speed (the same v2 top, program and images)", "",
              "| path | images | simulated cycles | wall s | cycles / s |", "|---|---:|---:|---:|---:|"]
        for r in res["sim"]:
            L.append(f"| {r['simulator']} | {r['images']} | {r['cycles']:,} | {r['wall_s']:.2f} | {r['cycles_per_s']:,.0f} |")
        if len(res["sim"]) > 1:
            L.append(f"\nFast harness / cocotb path: **{res['sim_ratio']:.1f}x**.")
    if res.get("synth"):
        y = res["synth"]
        L += ["", "## yosys synth_xilinx of the v2 top (xc7z020)", "",
              f"{y['lut']:,} LUT ({y['lut_percent']:.1f} %), {y['ff']:,} FF, {y['bram36']:g} BRAM36 "
              f"({y['bram_percent']:.1f} %), {y['dsp']} DSP48E1 (hw/synth/results/{V2_TOP}.json)."]
    L += ["", "## Against the targets of issue 11", ""]
    for k, v in res["targets"].items():
        L.append(f"* {k}: {v}")
    return "\n".join(L) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=50, help="test images per network (default 50)")
    p.add_argument("--batch", type=int, default=10, help="images per network run (one DMA each way)")
    p.add_argument("--switch-images", type=int, default=3, help="images per sub-net in the switch test")
    p.add_argument("--cocotb", default="icarus", choices=("icarus", "cocotb-verilator", "none"),
                   help="the cocotb path the fast harness is compared with (default icarus)")
    p.add_argument("--quick", action="store_true", help="5 images, 1 per sub-net, no cocotb comparison")
    p.add_argument("--out", type=Path, default=HERE / "results")
    argv = sys.argv[1:] if argv is None else argv
    args = p.parse_args(argv)
    if args.quick:
        args.images, args.switch_images, args.cocotb = 5, 1, "none"
    command = "python benchmarks/rtl/network.py" + (" " + shlex.join(argv) if argv else "")
    emb, images, labels = embedded_artifact()
    r32 = resnet_artifact(20, 32, 3, group_sparsity=0.25, seed=0)
    nets = []
    with open_sim("verilator", toplevel=V2_TOP) as bus:
        hw = connect(bus)
        print(f"{V2_TOP}: {hw.lanes} lanes, network mode {'yes' if hw.network else 'NO'}", flush=True)
        for name, art, imgs, labs in (("ResNet-20 embedded, 28x28x1 Fashion-MNIST", emb, images[:args.images],
                                       labels[:args.images]),
                                      ("ResNet-20, 32x32x3, 25 % group sparsity (random codes)", r32,
                                       random_images(r32, args.images, seed=0), None)):
            n = measure(bus, hw, name, art, imgs, args.batch, labs)
            print(f"{name}: {n['cycles_per_image_skip']:,.0f} cycles/image = {n['images_per_s_skip']:,.0f} images/s "
                  f"(dense {n['images_per_s_dense']:,.0f}); speedup {n['speedup']:.3f} vs G/G_nz {n['speedup_groups']:.3f} "
                  f"/ weighted {n['speedup_weighted']:.3f}; bit-exact {n['bit_exact_skip'] and n['bit_exact_dense']} "
                  f"({n['wall_s']:.0f} s)", flush=True)
            nets.append(n)
        sw = switch_cost(bus, hw, emb, images[:args.switch_images])
        print(f"switch: {sw['switch_cycles_min']}..{sw['switch_cycles_max']} extra cycles, bit-exact {sw['bit_exact']}",
              flush=True)
        shapes = []
        for i, spec in enumerate(SHAPES):
            shapes.append(shape_class(bus, hw, spec, seed=i))
            r = shapes[-1]
            print(f"shape {r['name']}: issue speedup {r['speedup_issue']:.2f} vs G/G_nz {r['ideal']:.2f} "
                  f"({r['issue_vs_ideal_percent']:.1f} %), bit-exact {r['bit_exact']}", flush=True)
    sim = [sim_speed("verilator", emb, images[:2])]
    if args.cocotb != "none":
        sim.append(sim_speed(args.cocotb, emb, images[:1]))
    for r in sim:
        print(f"{r['simulator']}: {r['cycles_per_s']:,.0f} cycles/s", flush=True)
    res = {"command": command, "git": git_describe(), "date": time.strftime("%Y-%m-%d"),
           "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
           "clock_mhz": CLOCK_MHZ, "networks": nets, "switch": sw, "shapes": shapes, "sim": sim,
           "synth": synth_record()}
    res["sim_ratio"] = sim[0]["cycles_per_s"] / sim[1]["cycles_per_s"] if len(sim) > 1 else None
    res["all_bit_exact"] = all(n["bit_exact_skip"] and n["bit_exact_dense"] for n in nets) and sw["bit_exact"] \
        and all(r["bit_exact"] for r in sim) and all(r["bit_exact"] for r in shapes)
    emb_n, r32_n = nets
    y = res["synth"] or {}
    res["targets"] = {
        "ResNet-20 32x32 images/s >= 860 (aim 3,000)": f"{r32_n['images_per_s_skip']:,.0f}",
        "embedded skip speedup >= 95 % of G/G_nz": f"{emb_n['speedup_vs_groups_percent']:.1f} % "
                                                   f"({emb_n['speedup_vs_weighted_percent']:.1f} % of the layer-weighted ideal)",
        "every shape class within 95 % of G/G_nz in issue cycles": "lowest "
            + f"{min(r['issue_vs_ideal_percent'] for r in shapes):.1f} % "
            + f"({min(shapes, key=lambda r: r['issue_vs_ideal_percent'])['name']})",
        "LUT <= 70 %": f"{y.get('lut_percent', float('nan')):.1f} %",
        "BRAM36 <= 90 %": f"{y.get('bram_percent', float('nan')):.1f} %",
        "switch < 1 % of an image": f"{sw['switch_cycles_max']} cycles",
        "fast harness >= 1 M cycles/s": f"{sim[0]['cycles_per_s']:,.0f}",
        "fast harness >= 30x cocotb": f"{res['sim_ratio']:.1f}x" if res["sim_ratio"] else "not measured (--quick)",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "network.json", json.dumps(res, indent=1, default=float) + "\n")
    md = markdown(res)
    atomic_write_text(args.out / "network.md", md)
    print(md)
    return 0 if res["all_bit_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
