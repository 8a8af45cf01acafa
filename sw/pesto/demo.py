"""`pesto demo`: the whole flow on the embedded model, in a few minutes on a laptop CPU.

  1. load the trained, compressed ResNet-20 for Fashion-MNIST shipped in sw/pesto/assets/
  2. export it to the accelerator artifact (packed codes of non-zero groups + group indexer)
  3. accuracy: the float model vs the integer pipeline (pesto.reference) on test images
  4. test images through the accelerator RTL in simulation (driver backend "sim", by default
     the fast Verilator harness): the whole network, its accelerated layers on the RTL one layer
     per DMA round trip, every logit checked bit for bit against the integer reference; the
     RTL's accuracy, its cycles per image and the simulation's speed
  5. per-layer profile on a test image: every accelerated layer with group skipping on and off
     (the dense-ternary baseline), each output checked against the reference; per-layer
     cycles, speedups and the end-to-end time per image at the fabric clock
  6. dynamic inference (docs/dynamic.md): the embedded K-sub-net model (``pesto.bench.dynamic.
     dynamic_artifact``) on the same engine, the sub-net switched between every two images, every
     logit checked against the integer reference; each sub-net's accuracy and latency, the switch
     cost, and the sub-net a latency budget picks

Everything lands in --out (default runs/demo/): demo.json (all figures), layers.csv, the
artifacts, speedup.png, dynamic.csv and dynamic.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from .errors import CheckpointError, HardwareError
from .sim import DEFAULT_ENGINE, DEFAULT_SIM, ENGINES, SIM_BUSES, engine_top
from .validate import data_folder, existing_file, int_range, nonnegative_int, output_folder, positive_float

REQUIRES = ("torch",)   # checked by pesto.cli before the command runs (the `train` extra)

EMBEDDED = "sw/pesto/assets/resnet20_fmnist_wpc.pt"
REMAKE = "pesto train --recipe fmnist-demo --out sw/pesto/assets/resnet20_fmnist_wpc.pt"  # docs/training.md
RTL_BATCH = 50  # images per Accelerator.execute call on the RTL: each layer's weights stream in once per batch
TEST_IMAGES, TRAIN_IMAGES = 10_000, 60_000   # Fashion-MNIST's splits


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--out", type=output_folder, default=Path("runs/demo"),
                        help="output folder (default runs/demo)")
    parser.add_argument("--checkpoint", type=existing_file, default=None,
                        help=f"a `pesto train` checkpoint (default: the embedded {EMBEDDED})")
    parser.add_argument("--images", type=int_range(1, TEST_IMAGES), default=1000,
                        help=f"test images for the accuracy comparison, 1..{TEST_IMAGES} (default 1000; "
                             f"{TEST_IMAGES} = the full set)")
    parser.add_argument("--rtl-images", type=nonnegative_int, default=1000,
                        help="of those, test images through the accelerator RTL, every logit checked against the "
                             "integer reference (default 1000, a few minutes; 0 skips it; at most --images run)")
    parser.add_argument("--dynamic-images", type=nonnegative_int, default=300,
                        help="test images through the accelerator RTL with the sub-net of the dynamic model switched "
                             "between every two (default 300; 0 skips the dynamic step)")
    parser.add_argument("--profile-images", type=nonnegative_int, default=1,
                        help="test images for the per-layer profile, each layer with skipping on and off "
                             "(default 1; 0 skips it; at most --images run)")
    parser.add_argument("--calibration-images", type=int_range(1, TRAIN_IMAGES), default=256,
                        help=f"training images that calibrate the activation formats at export, 1..{TRAIN_IMAGES} "
                             f"(default 256)")
    parser.add_argument("--simulator", choices=list(SIM_BUSES), default=DEFAULT_SIM,
                        help=f"RTL simulation (default {DEFAULT_SIM}: the fast C++ harness; cocotb-verilator and "
                             f"icarus go through cocotb, about 30x slower)")
    parser.add_argument("--engine", choices=list(ENGINES), default=DEFAULT_ENGINE,
                        help=f"the simulated accelerator RTL (default {DEFAULT_ENGINE}: the whole network from one "
                             f"start, sub-nets switched on chip; v1: layer by layer)")
    parser.add_argument("--clock-mhz", type=positive_float, default=100.0,
                        help="fabric clock for time figures, > 0 (default 100)")
    parser.add_argument("--data-root", type=data_folder, default=None,
                        help="folder with Fashion-MNIST, searched alone (default: $PESTO_DATA_ROOT, else system paths)")


def embedded_checkpoint() -> Path:
    from .train.checkpoint import default_checkpoint_path
    path = default_checkpoint_path()
    if not path.is_file():
        raise CheckpointError(f"the embedded model {path} is missing; remake it with `{REMAKE}` (docs/training.md) "
                              f"or pass --checkpoint")
    return path


class Steps:
    """Numbered progress lines with the time each step took."""

    def __init__(self, total: int):
        self.total, self.i, self.t0 = total, 0, time.monotonic()

    def __call__(self, what: str) -> None:
        self.i += 1
        print(f"\n[{self.i}/{self.total}] {what}  (t = {time.monotonic() - self.t0:.0f} s)", flush=True)


def float_accuracy(model, artifact, images: np.ndarray, labels: np.ndarray, batch: int = 500) -> float:
    """Top-1 accuracy in percent of the float PyTorch model, normalised exactly as the integer
    pipeline is."""
    import torch
    from .reference.network import normalize
    from tqdm import tqdm
    correct = 0
    with torch.no_grad():
        for i in tqdm(range(0, len(images), batch), desc="float model", unit="batch", file=sys.stderr):
            x = torch.from_numpy(normalize(artifact, images[i:i + batch]))
            correct += int((model(x).argmax(1).numpy() == labels[i:i + batch]).sum())
    return 100.0 * correct / len(images)


def run(args) -> int:
    from .util import claim_output
    with claim_output(args.out):   # a second demo writing the same folder is refused
        return _demo(args)


def _demo(args) -> int:
    from . import artifact as artifact_mod
    from .bench import report
    from .bench.cli import ARTIFACT_COLUMNS, profile_artifact
    from .data import load_splits
    from .driver import Accelerator
    from .export import export_model, load_model
    from .reference import network

    step = Steps(3 + (args.rtl_images > 0) + (args.profile_images > 0) + (args.dynamic_images > 0))
    out = Path(args.out)
    result: dict = {"command": "pesto demo " + " ".join(sys.argv[2:]), "clock_mhz": args.clock_mhz}

    step("loading the embedded compressed ResNet-20 and Fashion-MNIST")
    ckpt = args.checkpoint or embedded_checkpoint()
    model, info = load_model(str(ckpt))
    train, test = load_splits("fashion-mnist", root=args.data_root, augment=False)
    n = min(args.images, len(test))
    images, labels = test.images[:n].numpy(), test.labels[:n].numpy()
    print(f"checkpoint {ckpt} ({info['name']}, mode {info['mode']}); {n} test images")
    result["checkpoint"] = str(ckpt)

    step("exporting to the accelerator artifact")
    n_cal = args.calibration_images
    art = export_model(str(ckpt), calib_images=train.images[:n_cal].numpy(), num_calibration=n_cal, progress=True)
    art_path = artifact_mod.save(art, out / "resnet20_fmnist.pesto")
    t = art.totals()
    size = Path(art_path).stat().st_size
    float_bytes = 4 * t["weights"]
    result["compression"] = {**t, "artifact_bytes": size, "float32_weight_bytes": float_bytes,
                             "artifact_path": str(art_path)}
    print(f"{t['layers']} accelerated layers, {t['weights']} ternary weights: group sparsity "
          f"{100 * t['group_sparsity']:.1f} %, overall sparsity {100 * t['sparsity']:.1f} %, "
          f"compression {t['compression']:.1f}x (eq 2.8), ideal skip speedup {t['speedup_ideal']:.2f}x")
    print(f"artifact {art_path}: {size / 1024:.1f} KiB (float32 weights of those layers: {float_bytes / 1024:.1f} KiB)")

    step(f"accuracy on {n} test images: float model vs integer pipeline (pesto.reference)")
    acc_float = float_accuracy(model, art, images, labels)
    # in the RTL step's batches, so that the host float layers see the same batches in both
    int_logits = network.run_batched(art, images, batch_size=RTL_BATCH, progress=True)
    acc_int = float(100 * (int_logits.argmax(1) == labels).mean())
    result["accuracy"] = {"images": n, "unit": "percent", "float": acc_float, "integer": acc_int,
                          "delta_points": acc_int - acc_float}
    print(f"float {acc_float:.2f} %   integer pipeline {acc_int:.2f} %   ({acc_int - acc_float:+.2f} points)")

    if args.rtl_images > 0:
        k = min(args.rtl_images, n)
        step(f"{k} test images through the accelerator RTL ({args.simulator}), the whole network, every logit "
             f"checked bit for bit against the integer reference")
        result["rtl"] = rtl = rtl_network(art, images[:k], labels[:k], int_logits[:k], args)
        print(f"RTL accuracy {rtl['accuracy']:.2f} % on {k} images (integer pipeline on the same images "
              f"{rtl['integer_accuracy']:.2f} %); logits bit-exact vs the integer reference: "
              f"{'yes, all ' + str(k) if rtl['bit_exact_vs_reference'] else 'NO, ' + str(rtl['mismatched_images']) + ' images differ'}")
        print(f"{rtl['hw_cycles_per_image']:.0f} RTL cycles per image = {rtl['hw_images_per_s']:.0f} images/s at "
              f"{args.clock_mhz:g} MHz (streams included, host layers excluded); simulated at "
              f"{rtl['sim_cycles_per_s'] / 1e6:.2f} M cycles/s, {rtl['images_per_s_wall']:.1f} images/s of wall time "
              f"({rtl['wall_s']:.0f} s; {rtl['cpu_s']:.0f} s of CPU: {rtl['sim_cycles_per_cpu_s'] / 1e6:.2f} M cycles per "
              f"CPU second)")
        if not rtl["bit_exact_vs_reference"]:
            _write(out, result)
            raise HardwareError(f"the simulated accelerator disagrees with the integer reference on "
                                f"{rtl['mismatched_images']} of {k} images (see {out}/demo.json)")

    if args.profile_images > 0:
        k = min(args.profile_images, n)
        step(f"per-layer profile on {k} test image(s) ({args.simulator}): every layer with group skipping on and "
             f"off, checked bit for bit against the integer reference")
        t0 = time.perf_counter()
        with Accelerator(art, backend="sim", simulator=args.simulator, clock_mhz=args.clock_mhz,
                         toplevel=engine_top(args.engine)) as acc:
            print(acc, flush=True)
            prof = profile_artifact(acc, images[:k], args.clock_mhz)
        wall = time.perf_counter() - t0
        rows, e = prof["rows"], prof["end_to_end"]
        exact = bool(np.array_equal(prof["logits"], int_logits[:k]))
        pred = prof["logits"].argmax(1)
        result["simulation"] = {"images": k, "simulator": args.simulator, "bit_exact_vs_reference": exact,
                                "predictions": pred.tolist(), "labels": labels[:k].tolist(),
                                "simulation_wall_s": wall}
        result["layers"], result["end_to_end"] = rows, e
        print(report.table(rows, ARTIFACT_COLUMNS))
        print(f"logits bit-exact vs the integer reference: {'yes' if exact else 'NO'}; predicted "
              f"{pred.tolist()}, labels {labels[:k].tolist()}")
        print(f"end to end, {e['layers']} accelerated layers per image: {e['cycles_dense']:.0f} -> "
              f"{e['cycles_skip']:.0f} cycles = {e['us_per_image_dense']:.1f} -> {e['us_per_image_skip']:.1f} us "
              f"at {args.clock_mhz:g} MHz (streams included): {e['speedup']:.2f}x; compute only "
              f"{e['speedup_compute']:.2f}x; ideal {t['speedup_ideal']:.2f}x")
        report.write_results(out, "layers", rows, {"end_to_end": e}, report.table(rows, ARTIFACT_COLUMNS))
        report.plot_speedups(rows, out / "speedup.png", "ResNet-20 / Fashion-MNIST: per-layer speedup of group skipping")
        if not exact:
            _write(out, result)
            raise HardwareError("the simulated accelerator disagrees with the integer reference (see demo.json)")

    if args.dynamic_images > 0:
        from .bench.dynamic import dynamic_artifact
        k = min(args.dynamic_images, n)
        dyn = dynamic_artifact(train.images[:n_cal].numpy(), base=art, progress=True)
        step(f"dynamic inference: {dyn.num_subnets} sub-nets of one artifact on one engine ({args.simulator}), "
             f"the sub-net switched between every two of {k} test images, every logit checked")
        print(f"sub-nets: {dyn.meta['dynamic']['masks']}")
        result["dynamic"] = dynamic = dynamic_demo(dyn, images, labels, k, args, out)
        if not dynamic["bit_exact_vs_reference"]:
            _write(out, result)
            raise HardwareError(f"the simulated accelerator disagrees with the integer reference on "
                                f"{dynamic['mismatched_images']} of {k} images with sub-net switches (see demo.json)")

    _write(out, result)
    print(f"\nwrote {out}/demo.json" + (f", {out}/layers.csv, {out}/speedup.png" if args.profile_images else "") +
          (f", {out}/dynamic.csv, {out}/dynamic.png" if args.dynamic_images else "") + f", {art_path}")
    return 0


def dynamic_demo(dyn, images: np.ndarray, labels: np.ndarray, k: int, args, out: Path) -> dict:
    """The K-sub-net artifact ``dyn`` on the simulated engine: each sub-net's accuracy on all
    ``images`` (integer reference), then the first ``k`` images through the RTL with sub-net
    i mod K on image i (one image per call: a switch before every image), every logit against
    the reference; measured latency per sub-net, the switch cost, the policy's pick."""
    from tqdm import tqdm
    from . import artifact as artifact_mod
    from .bench import report
    from .bench.dynamic import measure_accuracy, plot_accuracy_latency, switch_cost
    from .driver import Accelerator
    path = artifact_mod.save(dyn, out / "resnet20_fmnist_dynamic.pesto")
    want = measure_accuracy(dyn, images, labels, progress=True, record=not dyn.meta["dynamic"]["masks"].startswith(
        "trained"))
    artifact_mod.save(dyn, path)   # with the accuracy just measured in each sub-net's metadata
    subnets = dyn.num_subnets
    cycles = [[] for _ in range(subnets)]
    logits = np.empty_like(want[0][:k])
    t0 = time.perf_counter()
    with Accelerator(dyn, backend="sim", simulator=args.simulator, clock_mhz=args.clock_mhz,
                     toplevel=engine_top(args.engine)) as acc:
        print(acc, flush=True)
        if acc.mode != "network":
            print(f"layer mode: {acc.mode_reason}", flush=True)
        mismatched = 0
        with tqdm(total=k, desc=f"RTL, sub-net switched per image ({acc.mode} mode)", unit="image",
                  file=sys.stderr) as bar:
            for i in range(k):
                s = i % subnets
                acc.select_subnet(s)
                logits[i] = acc.execute(images[i:i + 1])[0]
                cycles[s].append(sum(r.cycles for r in acc.records.values()))
                mismatched += int((logits[i] != want[s][i]).any())
                bar.update(1)
                bar.set_postfix_str(f"{mismatched} mismatched")
        switch = switch_cost(acc, images[:1], 0, subnets - 1)
        model = acc.subnets()
        mode, reason = acc.mode, acc.mode_reason
    wall = time.perf_counter() - t0
    rows = []
    for s, row in enumerate(model):
        mine = [i for i in range(k) if i % subnets == s]
        measured = float(np.mean(cycles[s])) if cycles[s] else float("nan")
        rows.append({"index": s, "name": row["name"], "group_sparsity_percent": 100 * row["group_sparsity"],
                     "issued_groups": row["issued_groups"], "speedup_ideal": row["speedup_ideal"],
                     "accuracy_percent": 100 * float((want[s].argmax(1) == labels).mean()), "images": len(images),
                     "rtl_images": len(mine),
                     "rtl_accuracy_percent": 100 * float((logits[mine].argmax(1) == labels[mine]).mean())
                     if mine else None,
                     "cycles_per_image": measured, "us_per_image": measured / args.clock_mhz,
                     "images_per_s": args.clock_mhz * 1e6 / measured, "model_cycles_per_image": row["cycles"],
                     "cycles_from": "RTL counters"})
    cols = [("index", "#"), ("name", "sub-net"), ("group_sparsity_percent", "group sparsity %"),
            ("accuracy_percent", f"accuracy % ({len(images)} images, reference)"),
            ("rtl_accuracy_percent", "accuracy % (RTL, its images)"), ("cycles_per_image", "RTL cycles / image"),
            ("us_per_image", f"us @ {args.clock_mhz:g} MHz"), ("images_per_s", "images/s"),
            ("model_cycles_per_image", "model cycles")]
    markdown = report.table(rows, cols)
    print(markdown)
    # budgets just above each sub-net's measured latency: the policy picks the most accurate one that fits
    budgets = sorted(1.02 * r["us_per_image"] for r in rows)
    picks = [_policy_pick(rows, b, args.clock_mhz) for b in budgets]
    sw_frac = None
    if switch["engine_cycles"] is not None:
        sw_frac = (switch["engine_cycles"] + (switch["bus_cycles"] or 0)) / switch["image_cycles"]
    print(f"{k} images, {k - 1} sub-net switches, every logit bit-exact vs the integer reference: "
          f"{'yes' if mismatched == 0 else 'NO, ' + str(mismatched) + ' images differ'} ({mode} mode; {wall:.0f} s)")
    print(f"a switch costs {switch['engine_cycles']} engine cycles"
          + (f" + {switch['bus_cycles']} bus cycles (the SUBNET write)" if switch["bus_cycles"] is not None else "")
          + (f" = {100 * sw_frac:.3f} % of one image" if sw_frac is not None else ""))
    for b, pick in zip(budgets, picks):
        print(f"latency budget {b:.0f} us per image -> sub-net {pick['index']} {pick['name']!r} "
              f"({pick['us_per_image']:.0f} us, {pick['accuracy_percent']:.2f} %)")
    meta = {"artifact": str(path), "masks": dyn.meta["dynamic"]["masks"], "mode": mode, "mode_reason": reason,
            "clock_mhz": args.clock_mhz}
    report.write_results(out, "dynamic", rows, meta, markdown)
    plot_accuracy_latency(rows, [], out / "dynamic.png", args.clock_mhz)
    return {"artifact": str(path), "subnets": rows, "rtl_images": k, "switches": k - 1, "mode": mode,
            "mode_reason": reason, "bit_exact_vs_reference": mismatched == 0, "mismatched_images": mismatched,
            "switch": switch, "switch_fraction_of_image": sw_frac,
            "budget_picks": [{"budget_us": b, "subnet": p["index"]} for b, p in zip(budgets, picks)],
            "wall_s": wall, "masks": dyn.meta["dynamic"]["masks"]}


def _policy_pick(rows: list[dict], budget_us: float, clock_mhz: float) -> dict:
    """The driver's policy (pesto.driver.subnets.choose) on the measured latencies."""
    from .driver.subnets import choose
    cands = [{**r, "us": r["us_per_image"]} for r in rows]
    return choose(cands, budget_us, clock_mhz)


def rtl_network(art, images: np.ndarray, labels: np.ndarray, want: np.ndarray, args) -> dict:
    """``images`` through the network on the simulated RTL (Accelerator.execute, RTL_BATCH at a
    time, tqdm progress), each batch's logits compared with the integer reference's ``want``."""
    from tqdm import tqdm
    from .driver import Accelerator
    print("starting the simulation (builds the RTL on first use)...", flush=True)
    logits = np.empty_like(want)
    hw_cycles = 0
    mismatched = 0
    with Accelerator(art, backend="sim", simulator=args.simulator, clock_mhz=args.clock_mhz,
                     toplevel=engine_top(args.engine)) as acc:
        print(acc, flush=True)
        mode = acc.mode
        bus = acc.backend.bus
        t0, cpu0, c0 = time.perf_counter(), time.process_time(), bus.cycles
        with tqdm(total=len(images), desc=f"RTL network ({args.simulator})", unit="image", file=sys.stderr) as bar:
            for i in range(0, len(images), RTL_BATCH):
                batch = slice(i, min(i + RTL_BATCH, len(images)))
                logits[batch] = acc.execute(images[batch])
                hw_cycles += sum(r.cycles for r in acc.records.values())
                mismatched += int((logits[batch] != want[batch]).any(axis=1).sum())
                bar.update(batch.stop - batch.start)
                wall = time.perf_counter() - t0
                bar.set_postfix_str(f"{(bus.cycles - c0) / wall / 1e6:.2f} M cycles/s, "
                                    f"{mismatched} mismatched, acc {100 * (logits[:batch.stop].argmax(1) == labels[:batch.stop]).mean():.1f} %")
        wall, cpu, sim_cycles = time.perf_counter() - t0, time.process_time() - cpu0, bus.cycles - c0
    k = len(images)
    per_image = hw_cycles / k
    return {"images": k, "simulator": args.simulator, "bit_exact_vs_reference": mismatched == 0,
            "mismatched_images": mismatched,
            "accuracy": float(100 * (logits.argmax(1) == labels).mean()),          # percent
            "integer_accuracy": float(100 * (want.argmax(1) == labels).mean()),
            "hw_cycles_per_image": per_image, "hw_images_per_s": args.clock_mhz * 1e6 / per_image,
            "clock_mhz": args.clock_mhz, "wall_s": wall, "images_per_s_wall": k / wall,
            "sim_cycles": sim_cycles, "sim_cycles_per_s": sim_cycles / wall, "cpu_s": cpu,
            "sim_cycles_per_cpu_s": sim_cycles / cpu if cpu > 0 else float("nan"), "batch": RTL_BATCH,
            "mode": mode,
            "note": ("network mode (one input and one output stream per batch, the glue on the engine)" if mode ==
                     "network" else "layer by layer (one DMA round trip per accelerated layer)")
                    + ", skip on; hw cycles include the streams, not the host float layers"}


def _write(out: Path, result: dict) -> None:
    from .bench.report import json_safe
    from .util import atomic_write_text
    atomic_write_text(out / "demo.json", json.dumps(json_safe(result), indent=2) + "\n")
