"""`pesto bench`: cycles of the accelerator with group skipping on and off, on the RTL simulation.

    pesto bench table7                      # table 7 of the seed: three ResNet-20 layers
    pesto bench sweep --shape 16x16x3x3     # speedup across group sparsity 0..95 %
    pesto bench artifact model.pesto        # every accelerated layer of an exported network
    pesto bench dynamic [model.pesto]       # K sub-nets on one engine: accuracy, latency, switch cost

Each writes JSON + CSV + markdown and a PNG plot to --out (default runs/bench/) and prints the
table. Cycles come from the engine's own counters (CYCLES, COMPUTE_CYCLES) read over AXI4-Lite
by the same driver code the board uses; time is cycles at --clock-mhz (100 MHz on the PYNQ-Z1).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import ConfigError, UsageError
from ..sim import DEFAULT_ENGINE, DEFAULT_SIM, ENGINES, SIM_BUSES
from ..validate import data_folder, existing_file, finite_float, int_range, output_folder, positive_float, positive_int, seed_int

REQUIRES = ("cocotb",)  # checked by pesto.cli before the command runs (the `sim` extra)

DEFAULT_SPARSITIES = (0.0, 0.25, 0.5, 0.75, 0.9, 0.95)

LAYER_COLUMNS = [("layer", "layer"), ("shape", "weights"), ("input_hw", "input"), ("nnz_groups", "non-zero groups"),
                 ("groups", "groups"), ("compute_cycles_dense", "cycles dense"),
                 ("compute_cycles_skip", "cycles skip"), ("speedup", "speedup"), ("speedup_ideal", "ideal"),
                 ("efficiency", "efficiency"), ("speedup_total", "speedup incl. streams"),
                 ("utilization_skip", "PE utilisation")]


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)

    def common(p):
        p.add_argument("-o", "--out", type=output_folder, default=Path("runs/bench"),
                       help="output folder (default runs/bench)")
        p.add_argument("--simulator", choices=list(SIM_BUSES), default=DEFAULT_SIM,
                       help=f"RTL simulation (default {DEFAULT_SIM}: the fast C++ harness; cocotb-verilator and "
                            f"icarus run through cocotb)")
        p.add_argument("--clock-mhz", type=positive_float, default=100.0,
                       help="fabric clock for time figures, > 0 (default 100)")
        p.add_argument("--seed", type=seed_int, default=0, help="seed of the random weights and activations")
        p.add_argument("--no-plot", action="store_true", help="skip the PNG plot")

    p = sub.add_parser("table7", help="table 7: the three ResNet-20 layers, skip on vs off, beside the seed")
    common(p)
    p.add_argument("--input-hw", type=int_range(1, 4096), nargs=3, metavar=("S1", "S2", "S3"), default=None,
                   help="input height/width of the stage 1/2/3 layers (default CIFAR's 32 16 8; "
                        "Fashion-MNIST ResNet-20: 28 14 7)")

    p = sub.add_parser("sweep", help="speedup across group sparsity for given layer shapes")
    common(p)
    p.add_argument("--shape", action="append", dest="shapes", metavar="NxCxKxK",
                   help="weight shape, repeatable (default: the three table 7 shapes)")
    p.add_argument("--sparsity", type=finite_float(0.0, 1.0, hi_open=True), nargs="+", default=list(DEFAULT_SPARSITIES),
                   help="group sparsities in [0, 1) (default 0 .25 .5 .75 .9 .95)")
    p.add_argument("--input-hw", type=int_range(1, 4096), default=None,
                   help="input height/width (default: table 7's 32/16/8 for its shapes, else 16)")
    p.add_argument("--cg", type=positive_int, default=16, help="PE group size Cg, >= 1 (default 16)")

    p = sub.add_parser("artifact", help="every accelerated layer of an exported network, and end to end")
    common(p)
    p.add_argument("artifact", type=existing_file, help="an artifact written by `pesto export-to-fpga`")
    p.add_argument("--images", type=int_range(1, 10000), default=1, help="test images to profile on (1..10000, default 1)")
    p.add_argument("--data-root", type=data_folder, default=None,
                   help="folder with the dataset, searched alone (default: $PESTO_DATA_ROOT, else system paths)")

    from .dynamic import AST_RESULTS
    p = sub.add_parser("dynamic", help="K sub-nets on one engine: accuracy, latency and switch cost per sub-net")
    common(p)
    p.add_argument("artifact", type=existing_file, nargs="?", default=None,
                   help="a multi-sub-net artifact (default: export the embedded dynamic model, docs/dynamic.md)")
    p.add_argument("--backend", choices=["sim", "ref", "hls"], default="sim",
                   help="the engine (default sim: the RTL; ref: the cycle model, no counters; hls: the C-sim)")
    p.add_argument("--engine", choices=list(ENGINES), default=DEFAULT_ENGINE,
                   help=f"with --backend sim: the accelerator RTL (default {DEFAULT_ENGINE}, network mode; v1: layer mode)")
    p.add_argument("--images", type=int_range(1, 10000), default=10000,
                   help="Fashion-MNIST test images for the reference accuracy (1..10000, default 10000, the whole set)")
    p.add_argument("--engine-images", type=int_range(1, 10000), default=1000,
                   help="of those, images through the engine per sub-net, each logit checked (default 1000)")
    p.add_argument("--calibration-images", type=int_range(1, 60000), default=256,
                   help="training images that calibrate the export of the embedded model (default 256)")
    p.add_argument("--ast-results", type=Path, default=AST_RESULTS,
                   help="the AST benchmark's results, for the individually trained models in the plot")
    p.add_argument("--replot", type=existing_file, default=None, metavar="DYNAMIC_JSON",
                   help="run nothing: redraw the plot (and the individually trained models in the JSON) of an "
                        "earlier run's dynamic.json, with --ast-results, into --out")
    p.add_argument("--data-root", type=data_folder, default=None,
                   help="folder with the dataset, searched alone (default: $PESTO_DATA_ROOT, else system paths)")


def parse_shape(text: str) -> tuple[int, int, int, int]:
    try:
        shape = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 4 or shape[2] != shape[3] or min(shape) < 1 or max(shape) > 1 << 16:
        raise UsageError(f"--shape {text!r}: write N x C x K x K with sizes 1..65536, e.g. 32x32x3x3")
    return shape


def _open_sim(args):
    from ..driver import open_backend
    print(f"[bench] starting the {args.simulator} simulation of the accelerator RTL "
          f"(builds it on first use)", flush=True)
    t0 = time.monotonic()
    backend = open_backend("sim", simulator=args.simulator)
    print(f"[bench] {backend.describe()} ready in {time.monotonic() - t0:.1f} s", flush=True)
    return backend


def _progress(total: int, desc: str):
    from tqdm import tqdm
    bar = tqdm(total=total, desc=desc, unit="layer", file=sys.stderr)

    def step(row):
        bar.update(1)
        bar.set_postfix_str(f"{row['layer']}: {row['speedup']:.2f}x of {row['speedup_ideal']:.2f}x")
        if bar.n == total:
            bar.close()
    return step


def run_table7(args, backend) -> dict:
    from ..sim import measure
    step = _progress(len(measure.TABLE7), "table 7")
    rows = []
    for t, hw in zip(measure.TABLE7, args.input_hw or [t.size for t in measure.TABLE7]):
        layer = measure.make_layer(t.channels, t.channels, 3, 16, nnz_groups=t.nnz_groups, seed=args.seed,
                                   name=t.name)
        x = measure.random_input(t.channels, hw, hw, seed=args.seed + 1)
        rows.append(_measure(backend, layer, x, args.clock_mhz, seed_speedup=t.seed_speedup))
        step(rows[-1])
    cols = LAYER_COLUMNS + [("seed_speedup", "seed (table 7)")]
    return {"stem": "table7", "rows": rows, "columns": cols,
            "title": "Table 7: dense ternary vs group skipping (RTL simulation)"}


def run_sweep(args, backend) -> dict:
    from ..sim import measure
    shapes = [parse_shape(s) for s in args.shapes] if args.shapes else \
        [(t.channels, t.channels, 3, 3) for t in measure.TABLE7]
    table7_hw = {(t.channels, t.channels, 3, 3): t.size for t in measure.TABLE7}
    step = _progress(len(shapes) * len(args.sparsity), "sweep")
    rows = []
    for shape in shapes:
        n, c, k, _ = shape
        hw = args.input_hw or table7_hw.get(tuple(shape), 16)
        for gs in args.sparsity:
            name = f"{n}x{c}x{k}x{k}"
            layer = measure.make_layer(n, c, k, args.cg, group_sparsity=gs, seed=args.seed, name=name)
            x = measure.random_input(c, hw, hw, seed=args.seed + 1)
            rows.append(_measure(backend, layer, x, args.clock_mhz))
            step(rows[-1])
    cols = [("layer", "weights"), ("input_hw", "input"), ("group_sparsity", "group sparsity"),
            ("nnz_groups", "non-zero groups"),
            ("compute_cycles_dense", "cycles dense"), ("compute_cycles_skip", "cycles skip"),
            ("speedup", "speedup"), ("speedup_ideal", "ideal"), ("efficiency", "efficiency"),
            ("utilization_skip", "PE utilisation (skip)")]
    return {"stem": "sweep", "rows": rows, "columns": cols, "title": "Speedup across group sparsity"}


def _measure(backend, layer, x, clock_mhz: float, **extra) -> dict:
    """pesto.sim.measure.measure_tiled on the backend's bus (a layer larger than the build runs
    as the driver's tiles)."""
    from ..sim.measure import measure_tiled
    row = measure_tiled(backend.bus, layer, x, backend.hw, clock_mhz=clock_mhz)
    row["input_hw"] = list(x.shape[1:])
    row.update(extra)
    return row


def profile_artifact(acc, images, clock_mhz: float) -> dict:
    """Per-layer and end-to-end cycles of ``acc`` (a hardware-backed Accelerator) on ``images``,
    and the logits of that pass."""
    rows, logits = acc.profile(images, with_logits=True, progress=True)
    skip = sum(r["cycles_skip"] for r in rows)
    dense = sum(r["cycles_dense"] for r in rows)
    end_to_end = {
        "layers": len(rows), "cycles_skip": skip, "cycles_dense": dense,
        "compute_cycles_skip": sum(r["compute_cycles_skip"] for r in rows),
        "compute_cycles_dense": sum(r["compute_cycles_dense"] for r in rows),
        "us_per_image_skip": skip / clock_mhz, "us_per_image_dense": dense / clock_mhz,
        "speedup": dense / skip if skip else float("inf"), "clock_mhz": clock_mhz,
        "note": "accelerated layers only, weights streamed in per layer; host float layers excluded",
    }
    end_to_end["speedup_compute"] = (end_to_end["compute_cycles_dense"] / end_to_end["compute_cycles_skip"]
                                     if end_to_end["compute_cycles_skip"] else float("inf"))
    return {"rows": rows, "end_to_end": end_to_end, "logits": logits}


ARTIFACT_COLUMNS = [("layer", "layer"), ("shape", "weights"), ("input_hw", "input"), ("nnz_groups", "non-zero groups"),
                    ("groups", "groups"), ("compute_cycles_dense", "cycles dense"),
                    ("compute_cycles_skip", "cycles skip"), ("speedup", "speedup"), ("speedup_ideal", "ideal"),
                    ("efficiency", "efficiency"), ("cycles_skip", "cycles incl. streams"),
                    ("us_skip", "us @ clock")]


def fmnist_test_images(n: int, data_root=None, shape=(1, 28, 28)):
    """The first ``n`` Fashion-MNIST test images (uint8) and labels, centre-cropped when the
    model takes a smaller single-channel input."""
    from ..data import load_splits
    _, test = load_splits("fashion-mnist", root=data_root, augment=False)
    images, labels = test.images[:n].numpy(), test.labels[:n].numpy()
    c, h, w = shape
    if (c, h, w) != images.shape[1:]:
        if c != 1 or h > images.shape[2] or w > images.shape[3]:
            raise ConfigError(f"the artifact takes {c}x{h}x{w} inputs; Fashion-MNIST images are 1x28x28")
        y0, x0 = (images.shape[2] - h) // 2, (images.shape[3] - w) // 2
        images = np.ascontiguousarray(images[:, :, y0:y0 + h, x0:x0 + w])
    return images, labels


def run_artifact(args, backend) -> dict:
    from ..driver import Accelerator
    acc = Accelerator(args.artifact, backend=backend, clock_mhz=args.clock_mhz)
    images, _ = fmnist_test_images(args.images, args.data_root, acc.artifact.input_shape)
    print(f"[bench] profiling {len(acc.layers)} accelerated layers on {len(images)} image(s), skip on and off",
          flush=True)
    result = profile_artifact(acc, images, args.clock_mhz)
    e = result["end_to_end"]
    footer = (f"\nend to end ({e['layers']} accelerated layers, per image): {e['cycles_dense']:.0f} cycles dense, "
              f"{e['cycles_skip']:.0f} with skipping = {e['us_per_image_dense']:.1f} us -> "
              f"{e['us_per_image_skip']:.1f} us at {args.clock_mhz:g} MHz ({e['speedup']:.2f}x; compute only "
              f"{e['speedup_compute']:.2f}x)")
    return {"stem": f"artifact_{args.artifact.stem}", "rows": result["rows"], "columns": ARTIFACT_COLUMNS,
            "title": f"{args.artifact.name}: per-layer speedup", "footer": footer,
            "meta": {"end_to_end": e, "artifact": str(args.artifact)}}


def validate(args) -> None:
    """Refuse bad options before the simulator starts (usage errors, exit 2)."""
    if args.bench == "sweep":
        for s in args.shapes or []:
            n, c, k, _ = parse_shape(s)
            if k not in (1, 3):
                raise UsageError(f"--shape {s!r}: the engine runs 1x1 and 3x3 kernels")
            if args.cg > c:
                raise UsageError(f"--cg {args.cg} is larger than the {c} input channels of --shape {s!r}")
        bad = [s for s in args.sparsity if not 0.0 <= s < 1.0]
        if bad:
            raise UsageError(f"--sparsity {bad}: group sparsities must lie in [0, 1)")
    if args.bench in ("artifact", "dynamic") and args.artifact is not None and not args.artifact.is_file():
        raise UsageError(f"artifact {args.artifact} not found; write one with `pesto export-to-fpga`")
    if args.clock_mhz <= 0:
        raise UsageError(f"--clock-mhz must be positive, got {args.clock_mhz}")


def run(args) -> int:
    from ..util import claim_output
    validate(args)
    with claim_output(args.out):   # a second bench writing the same folder is refused
        return _run(args)


def _run(args) -> int:
    from . import report
    if args.bench == "dynamic":
        from . import dynamic
        return dynamic.run(args)
    runner = {"table7": run_table7, "sweep": run_sweep, "artifact": run_artifact}[args.bench]
    backend = _open_sim(args)
    try:
        res = runner(args, backend)
    finally:
        backend.close()
    markdown = report.table(res["rows"], res["columns"]) + res.get("footer", "")
    print(markdown)
    meta = {"bench": args.bench, "simulator": args.simulator, "clock_mhz": args.clock_mhz, "seed": args.seed,
            "command": "pesto bench " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["bench"] else args.bench,
            "hardware": backend.describe(), "hwcfg": dataclasses.asdict(backend.hw), **res.get("meta", {})}
    paths = report.write_results(args.out, res["stem"], res["rows"], meta, markdown)
    if not args.no_plot:
        png = args.out / f"{res['stem']}.png"
        if args.bench == "sweep":
            paths.append(report.plot_sweep(res["rows"], png))
        else:
            paths.append(report.plot_speedups(res["rows"], png, res["title"]))
    print("[bench] wrote " + ", ".join(str(p) for p in paths))
    return 0
