"""`pesto bench dynamic [ARTIFACT]`: K sub-nets on one engine, switched at run time (docs/dynamic.md).

Per sub-net: its accuracy on the Fashion-MNIST test set through the integer reference (all
10,000 images by default), the same images' first ``--engine-images`` through the accelerator
(default the RTL, ``--backend sim``) with every logit checked bit for bit against the reference,
its cycles and images/s at the clock from the engine's counters (or the cycle model on ``ref``),
the dense-ternary baseline on the same engine and the speedup against G/G_k; the cost of a
switch; a plot of accuracy against latency with the individually trained models of the AST
benchmark (``benchmarks/training/ast.py``) beside the sub-nets; JSON, CSV and markdown.

Without ARTIFACT it exports the embedded dynamic model (``dynamic_artifact``): the K = 3 AST-GC
ResNet-20 of ``DYNAMIC_ASSET`` once that asset exists; until then three untrained sub-nets of the
embedded WPC model that keep ``PLACEHOLDER_KEEP`` of each layer's stored groups, the groups with
the most non-zero codes first (``pruned_subnets``), so every place that uses it switches to the
asset by one constant.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from .. import resources
from ..errors import ConfigError
from ..sim import engine_top

# The embedded K-sub-net model (issue 10: a K = 3 AST-GC ResNet-20 made by `pesto train --recipe
# fmnist-ast`). While it is missing, dynamic_artifact draws random masks over the WPC model.
DYNAMIC_ASSET = Path(__file__).resolve().parents[1] / "assets" / "resnet20_fmnist_ast.pt"
PLACEHOLDER_KEEP = (1.0, 0.9, 0.8)     # fractions of the stored groups the placeholder sub-nets keep
# the AST benchmark's results live in a checkout only (an installed pesto has no benchmarks/)
AST_RESULTS = (resources.checkout() or Path(".")) / "benchmarks" / "training" / "results" / "ast.json"
DEFAULT_OUT = Path("runs/bench")
BATCH = 50                               # images per Accelerator.execute call on an engine


def dynamic_artifact(calib_images: np.ndarray, checkpoint=None, progress: bool = False, base=None):
    """The embedded K-sub-net model, exported: ``checkpoint`` (default ``DYNAMIC_ASSET`` when it
    exists) must hold sub-nets (`pesto train --mode ast`); without one, ``pruned_subnets`` of the
    embedded WPC model (``base``: that model already exported). The artifact's ``meta["dynamic"]``
    says which. Needs torch (the exporter)."""
    from ..export import export_model
    ckpt = Path(checkpoint) if checkpoint else (DYNAMIC_ASSET if DYNAMIC_ASSET.is_file() else None)
    n = len(calib_images)
    if ckpt is not None:
        art = export_model(str(ckpt), calib_images=calib_images, num_calibration=n, progress=progress)
        if art.num_subnets < 2:
            raise ConfigError(f"{ckpt} holds one network, not sub-nets: train one with `pesto train --recipe "
                              f"fmnist-ast` (docs/training.md)")
        art.meta["dynamic"] = {"source": str(ckpt), "masks": "trained (AST-GC)"}
        return art
    from ..train.checkpoint import default_checkpoint_path
    if base is None:
        base = export_model(str(default_checkpoint_path()), calib_images=calib_images, num_calibration=n,
                            progress=progress)
    art = pruned_subnets(base, PLACEHOLDER_KEEP)
    art.meta["dynamic"] = {"source": str(default_checkpoint_path()),
                           "masks": f"placeholder until {DYNAMIC_ASSET.name} exists: untrained sub-nets keeping "
                                    f"{', '.join(f'{k:g}' for k in PLACEHOLDER_KEEP)} of each layer's stored groups "
                                    f"(most non-zero codes first), the model's own output stages"}
    return art


def pruned_subnets(art, keep=PLACEHOLDER_KEEP):
    """A len(keep)-sub-net artifact over a plain artifact's codes: sub-net k issues the fraction
    keep[k] of every layer's stored groups with the most non-zero codes (ties: lower (n, g)
    first) and shares the layer's output stage. keep[0] must be 1 (the storage map is the union)."""
    from .. import artifact as A
    from ..ir import SharedTernaryConv, SubnetStage
    if not keep or keep[0] != 1.0 or any(not 0 < f <= 1 for f in keep):
        raise ConfigError(f"keep={keep}: fractions in (0, 1], the first 1 (it issues every stored group)")
    nodes = []
    for node in art.nodes:
        new = A.Node(node.name, node.op, list(node.inputs), dict(node.attrs), dict(node.arrays), frac=node.frac)
        if node.op == "tconv":
            lay = node.layer
            n, g = lay.indexer.shape
            padded = np.zeros((n, g * lay.cg) + lay.kernel, dtype=np.int8)
            padded[:, :lay.in_channels] = lay.codes
            weight = np.abs(padded).reshape(n, g, -1).sum(axis=2)
            order = np.argsort(-np.where(lay.indexer, weight, -1).reshape(-1), kind="stable")
            stages = []
            for f in keep:
                issue = np.zeros(n * g, dtype=bool)
                issue[order[:int(round(f * lay.nnz_groups))]] = True
                stages.append(SubnetStage(issue.reshape(n, g) & lay.indexer, lay.mult, lay.shift, lay.bias))
            new.shared = SharedTernaryConv(lay.name, lay.codes, stages, lay.stride, lay.padding, lay.cg, lay.relu,
                                           lay.f_in, lay.f_out)
            new.attrs["nnz_groups"] = new.shared.nnz_groups
        nodes.append(new)
    subnets = [A.Subnet(f"keep{round(100 * f)}", {"target_group_sparsity": None, "keep_fraction": f})
               for f in keep]
    return A.Artifact(nodes, art.output, dict(art.meta), subnets)


def measure_accuracy(art, images: np.ndarray, labels: np.ndarray, progress: bool = False,
                     record: bool = True) -> list[np.ndarray]:
    """Reference logits of every sub-net on ``images``; with ``record`` each sub-net's
    ``meta["accuracy"]`` (docs/subnets.md) is set to the measured top-1 in percent."""
    from ..reference import network
    out = []
    for k, name in enumerate(art.subnet_names):
        if progress:
            print(f"[dynamic] sub-net {k} {name!r}: {len(images)} images through the integer reference", flush=True)
        logits = network.run_batched(art, images, batch_size=250, progress=progress, subnet=k)
        out.append(logits)
        if record and art.subnets:
            art.subnets[k].meta["accuracy"] = {
                "top1_percent": round(100 * float((logits.argmax(1) == labels).mean()), 4),
                "images": int(len(images)), "split": "test",
                "measured_by": "pesto.reference (integer pipeline), pesto bench dynamic"}
    return out


def switch_cost(acc, image: np.ndarray, a: int, b: int) -> dict:
    """The engine cycles of one image of sub-net ``a`` right after sub-net ``b`` ran, minus those
    right after ``a`` itself ran (the same image, the same engine), and what the switch itself
    puts on the bus (one SUBNET write in network mode). None where there are no counters."""
    if not acc.has_counters:
        return {"engine_cycles": None, "bus_cycles": None, "source": "no counters (cycle model: a switch is "
                "one register write; no engine cycle depends on the previous sub-net)"}
    runs = []
    for first in (a, b):
        acc.execute(image, subnet=first)
        acc.execute(image, subnet=a)
        runs.append(sum(r.cycles for r in acc.records.values()))
    same, switched = runs
    bus_cycles = None
    bus = getattr(acc.backend, "bus", None)
    if acc.mode == "network" and hasattr(bus, "cycles"):
        from ..hwspec import REGMAP
        c0 = bus.cycles
        bus.write(REGMAP.offset("SUBNET"), int(a))
        bus_cycles = int(bus.cycles - c0)
    return {"engine_cycles": int(switched - same), "bus_cycles": bus_cycles, "image_cycles": int(same),
            "source": f"{acc.backend.name} counters, {acc.mode} mode"}


def engine_pass(art, k: int, images, want: np.ndarray, labels, backend, clock_mhz: float,
                backend_options: dict, dense_images: int = 2, progress: bool = False) -> dict:
    """Sub-net k on the engine: logits checked against ``want``, cycles per image, the dense
    baseline on the first ``dense_images`` images."""
    from tqdm import tqdm
    from ..driver import Accelerator
    out = {}
    with Accelerator(art, backend=backend, subnet=k, clock_mhz=clock_mhz, **backend_options) as acc:
        mismatched, cycles, logits = 0, 0, np.empty_like(want)
        with tqdm(total=len(images), desc=f"sub-net {k} on {acc.backend.name} ({acc.mode} mode)", unit="image",
                  file=sys.stderr, disable=not progress) as bar:
            for i in range(0, len(images), BATCH):
                sl = slice(i, min(i + BATCH, len(images)))
                logits[sl] = acc.execute(images[sl])
                mismatched += int((logits[sl] != want[sl]).any(axis=1).sum())
                cycles += sum(r.cycles for r in acc.records.values())
                bar.update(sl.stop - sl.start)
                bar.set_postfix_str(f"{mismatched} mismatched")
        out.update(engine_mode=acc.mode, engine_images=len(images), engine_mismatched=mismatched,
                   engine_bit_exact=mismatched == 0,
                   engine_accuracy_percent=100 * float((logits.argmax(1) == labels).mean()),
                   model=acc.subnets()[k], has_counters=acc.has_counters, mode_reason=acc.mode_reason,
                   describe=acc.backend.describe())
        if acc.has_counters:
            out["cycles_per_image"] = cycles / len(images)
            out["layer_cycles"] = _per_image(acc.records)
            if acc.mode == "network":
                out["step_counters"] = acc.step_counters()
                out["program"] = acc.program
            if art.num_subnets > 1:
                out["switch"] = switch_cost(acc, images[:1], k, (k + 1) % art.num_subnets)
    with Accelerator(art, backend=backend, subnet=k, clock_mhz=clock_mhz, skip=False, **backend_options) as dense:
        y = dense.execute(images[:dense_images])
        if not np.array_equal(y, want[:dense_images]):
            raise ConfigError(f"sub-net {k}: the dense baseline disagrees with the reference")
        if dense.has_counters:
            out["dense_cycles_per_image"] = sum(r.cycles for r in dense.records.values()) / dense_images
            out["dense_layer_cycles"] = _per_image(dense.records)
            if dense.mode == "network":
                out["dense_step_counters"] = dense.step_counters()
        out["dense_model"] = dense.subnets()[k]
    return out


def _per_image(records) -> dict:
    """{record name: (cycles, compute cycles) per image} of an Accelerator's last call."""
    return {name: (r.cycles / len(r.stats), r.compute_cycles / len(r.stats)) for name, r in records.items() if r.stats}


def measured_ideal(art, k: int, skip: dict, dense: dict) -> dict | None:
    """Layer mode on an engine with counters: the G/G_k ideal from measured cycles. Each
    accelerated layer's ideal is its dense cycles (skipping off, every group) times the fraction
    of its groups sub-net k issues; returned as ideal / measured in percent, for the whole cycles
    (streams included) and for the compute cycles alone. None in network mode (one record)."""
    sub = art.subnet(k)
    layers = {layer.name: layer for layer in sub.layers}
    if not skip or set(skip) != set(layers) or set(dense) != set(layers):
        return None
    frac = {n: int(l.nnz_groups) / int(np.prod(l.indexer.shape)) for n, l in layers.items()}
    out = {}
    for i, key in enumerate(("", "compute_")):
        ideal = sum(dense[n][i] * frac[n] for n in layers)
        out[f"measured_{key}vs_ideal_percent"] = _percent(ideal, sum(skip[n][i] for n in layers))
    return out


def measured_network_ideal(program, k: int, skip: list, dense: list) -> dict | None:
    """Network mode on an engine with counters: the G/G_k ideal from the engine's own per-step
    counters (``protocol.StepStats`` of a skipping run and of a dense one). Each conv step's ideal
    issue cycles are its measured dense ones times the fraction of its groups sub-net k issues;
    everything else (fill and drain of a conv step, vector and stream steps) counts as measured.
    Returned as ideal / measured in percent, for the steps' whole cycles and for the PE array."""
    from ..driver.subnets import weighted_ideal
    if not skip or not dense or len(skip) != len(program.steps) or len(dense) != len(skip):
        return None
    ideal, ideal_issue = weighted_ideal(program, k, [(s.cycles, s.issue_cycles if s.op == "conv" else None,
                                                      d.issue_cycles) for s, d in zip(skip, dense)])
    return {"measured_vs_ideal_percent": _percent(ideal, sum(s.cycles for s in skip)),
            "measured_compute_vs_ideal_percent": _percent(ideal_issue, sum(s.issue_cycles for s in skip
                                                                           if s.op == "conv"))}


def individual_models(path: Path = AST_RESULTS) -> list[dict]:
    """The individually trained models of the AST benchmark (runs named ``indiv_*``): name,
    group sparsity, test accuracy in percent; empty if the results are not there."""
    path = Path(path)
    if not path.is_file():
        return []
    res = json.loads(path.read_text())
    out = []
    for run in res.get("runs", []):
        if str(run.get("name", "")).startswith("indiv_") and run.get("subnets"):
            s = run["subnets"][0]
            out.append({"name": run["name"], "group_sparsity": float(s["group_sparsity"]),
                        "accuracy_percent": float(s["test_acc"]), "images": res.get("test_images"),
                        "steps": (res.get("budget") or {}).get("steps")})
    return out


def latency_fit(rows: list[dict]) -> tuple[float, float]:
    """us = a + b * issued fraction, least squares through the sub-nets (to place models that
    have no artifact here, from their group sparsity)."""
    x = np.array([1 - r["group_sparsity_percent"] / 100 for r in rows])
    y = np.array([r["us_per_image"] for r in rows])
    if len(rows) < 2 or np.ptp(x) == 0:
        return float(y.mean()), 0.0
    b, a = np.polyfit(x, y, 1)
    return float(a), float(b)


def _percent(a, b):
    return None if a is None or not b else 100 * a / b


COLUMNS = [("index", "#"), ("name", "sub-net"), ("group_sparsity_percent", "group sparsity %"),
           ("issued_groups", "issued / stored groups"), ("speedup_ideal", "G/G_k"),
           ("accuracy_percent", "accuracy % (reference)"), ("engine_accuracy_percent", "accuracy % (engine)"),
           ("engine_bit_exact", "bit-exact"), ("cycles_per_image", "cycles / image"),
           ("us_per_image", "us / image"), ("images_per_s", "images/s"), ("speedup", "speedup vs dense"),
           ("latency_vs_ideal_percent", "ideal / latency % (v2 model)"),
           ("pe_array_vs_ideal_percent", "PE array: ideal / cycles % (v2 model)"),
           ("measured_vs_ideal_percent", "ideal / latency % (measured)"),
           ("measured_compute_vs_ideal_percent", "ideal / compute % (measured)")]


def place_individual(rows: list[dict], individual: list[dict]) -> dict:
    """Estimate the individually trained models' latency from their group sparsity with a
    least-squares line through the sub-nets (they have no artifact here); the fit's record."""
    a, b = latency_fit(rows)
    for m in individual:
        m["us_per_image_estimated"] = a + b * (1 - m["group_sparsity"])
    return {"a_us": a, "b_us": b, "note": "us = a + b * (1 - group sparsity), least squares through the sub-nets: "
            "the individually trained models have no artifact here, so their latency is estimated from their sparsity"}


def replot(args) -> int:
    """``--replot DYNAMIC_JSON``: the plot of an earlier run, redrawn with ``--ast-results``."""
    from ..util import atomic_write_text
    data = json.loads(Path(args.replot).read_text())
    rows = data.get("rows")
    if not rows or data.get("bench") != "dynamic":
        raise ConfigError(f"{args.replot} is not the dynamic.json of `pesto bench dynamic`")
    individual = individual_models(args.ast_results)
    data.update(individual_models=individual, individual_latency_fit=place_individual(rows, individual),
                ast_results=str(args.ast_results),
                replot_command="pesto bench " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["bench"] else "replot")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "dynamic.json", json.dumps(data, indent=2) + "\n")
    png = plot_accuracy_latency(rows, individual, out / "dynamic.png", data.get("clock_mhz", args.clock_mhz))
    print(f"[dynamic] {len(individual)} individually trained models from {args.ast_results}; wrote "
          f"{out / 'dynamic.json'}, {png}")
    return 0


def run(args) -> int:
    from ..artifact import load, save
    from . import report
    from .cli import fmnist_test_images
    if getattr(args, "replot", None) is not None:
        return replot(args)
    out = Path(args.out)
    t0 = time.monotonic()
    if args.artifact is not None:
        art = load(args.artifact)
        art_path = Path(args.artifact)
    else:
        from ..data import load_splits
        train, _ = load_splits("fashion-mnist", root=args.data_root, augment=False)
        print("[dynamic] exporting the embedded dynamic model", flush=True)
        art = dynamic_artifact(train.images[:args.calibration_images].numpy(), progress=True)
        art_path = out / "dynamic.pesto"
    if art.num_subnets < 2:
        raise ConfigError(f"{art_path}: one network, no sub-nets; `pesto bench dynamic` needs a multi-sub-net "
                          f"artifact (`pesto train --mode ast`, then `pesto export-to-fpga`)")
    images, labels = fmnist_test_images(args.images, args.data_root, art.input_shape)
    k_engine = min(args.engine_images, len(images))
    meta_acc = [s.meta.get("accuracy") for s in art.subnets]
    want = measure_accuracy(art, images, labels, progress=True, record=args.artifact is None)
    if args.artifact is None:
        save(art, art_path)
    options, bus = {}, None
    if args.backend == "sim":   # one simulation for every run of the benchmark
        from ..sim import open_sim
        print(f"[dynamic] starting the {args.simulator} simulation of the accelerator RTL ({args.engine})", flush=True)
        bus = open_sim(args.simulator, toplevel=engine_top(args.engine)).open()
        options = {"sim": bus}
    try:
        rows, switch, e = _subnet_rows(art, images, labels, want, meta_acc, k_engine, options, args)
    finally:
        if bus is not None:
            bus.close()
    individual = individual_models(args.ast_results)
    fit = place_individual(rows, individual)
    markdown = report.table(rows, COLUMNS)
    sw_rows = [r for r in rows if "switch_engine_cycles" in r]
    if sw_rows:
        worst = max(r["switch_fraction_of_image"] for r in sw_rows)
        markdown += (f"\n\nswitch: {', '.join(str(r['switch_engine_cycles']) for r in sw_rows)} engine cycles, "
                     f"{sw_rows[0]['switch_bus_cycles']} bus cycles for the SUBNET write; at most "
                     f"{100 * worst:.3f} % of one image's cycles")
    else:
        markdown += "\n\nswitch: no counters on this backend (the cycle model: one register write, no engine cycles)"
    ideal = [r["latency_vs_ideal_percent"] for r in rows if r["latency_vs_ideal_percent"] is not None]
    if ideal:
        markdown += (f"\nlatency against G/G_k layer by layer (ideal: every accelerated layer costs its dense cycles "
                     f"times its issued fraction of groups): within {max(abs(v - 100) for v in ideal):.2f} % "
                     f"on every sub-net")
    measured = [r["measured_vs_ideal_percent"] for r in rows if r["measured_vs_ideal_percent"] is not None]
    if measured:
        comp = [r["measured_compute_vs_ideal_percent"] for r in rows]
        mode = rows[0]["engine_mode"]
        unit = "each conv step's dense issue cycles" if mode == "network" else "each layer's dense cycles"
        markdown += (f"\nmeasured in {mode} mode against G/G_k layer by layer ({unit} on this engine "
                     f"times its issued fraction): whole cycles within {max(abs(v - 100) for v in measured):.2f} %, "
                     f"compute cycles within {max(abs(v - 100) for v in comp):.2f} % on every sub-net")
    print(markdown)
    meta = {"bench": "dynamic", "command": "pesto bench " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["bench"]
            else "dynamic", "artifact": str(art_path), "dynamic": art.meta.get("dynamic"),
            "backend": args.backend, "simulator": args.simulator if args.backend == "sim" else None,
            "rtl_top": engine_top(args.engine) if args.backend == "sim" else None,
            "clock_mhz": args.clock_mhz, "images": len(images), "engine_images": k_engine,
            "engine": rows and e["describe"], "mode_reason": e["mode_reason"], "switch": switch,
            "individual_models": individual, "individual_latency_fit": fit, "ast_results": str(args.ast_results),
            "wall_s": round(time.monotonic() - t0, 1)}
    paths = report.write_results(out, "dynamic", rows, meta, markdown)
    if not args.no_plot:
        paths.append(plot_accuracy_latency(rows, individual, out / "dynamic.png", args.clock_mhz))
    print("[dynamic] wrote " + ", ".join(str(p) for p in paths))
    return 0


def _subnet_rows(art, images, labels, want, meta_acc, k_engine: int, options: dict, args):
    """One row per sub-net: the reference accuracy, the engine pass, cycles, the dense baseline."""
    rows, switch, e = [], None, {}
    for k, name in enumerate(art.subnet_names):
        e = engine_pass(art, k, images[:k_engine], want[k][:k_engine], labels[:k_engine], args.backend,
                        args.clock_mhz, options, progress=True)
        if not e["engine_bit_exact"]:
            raise ConfigError(f"sub-net {k} {name!r}: {e['engine_mismatched']} of {k_engine} images differ between "
                              f"{args.backend} and the integer reference")
        model, dense_model = e["model"], e["dense_model"]
        measured = "cycles_per_image" in e
        cycles = e["cycles_per_image"] if measured else model["cycles"]
        dense = e.get("dense_cycles_per_image", dense_model["cycles"])
        row = {
            "index": k, "name": name, "group_sparsity_percent": 100 * model["group_sparsity"],
            "issued_groups": model["issued_groups"], "groups": model["groups"], "speedup_ideal": model["speedup_ideal"],
            "accuracy_percent": 100 * float((want[k].argmax(1) == labels).mean()), "images": len(images),
            "meta_accuracy_percent": (meta_acc[k] or {}).get("top1_percent"),
            "engine": args.backend, "engine_mode": e["engine_mode"], "engine_images": k_engine,
            "engine_accuracy_percent": e["engine_accuracy_percent"], "engine_bit_exact": e["engine_bit_exact"],
            "cycles_per_image": cycles, "cycles_from": "engine counters" if measured else "cycle model",
            "us_per_image": cycles / args.clock_mhz, "images_per_s": args.clock_mhz * 1e6 / cycles,
            "model_cycles_per_image": model["cycles"], "model_issue_cycles": model["issue_cycles"],
            "model_ideal_cycles": model["ideal_cycles"], "model_ideal_issue_cycles": model["ideal_issue_cycles"],
            "dense_cycles_per_image": dense, "dense_model_issue_cycles": dense_model["issue_cycles"],
            "speedup": dense / cycles,
            # 100 %: each accelerated layer costs its dense cycles times its issued fraction of groups
            "latency_vs_ideal_percent": _percent(model["ideal_cycles"], cycles),
            "pe_array_vs_ideal_percent": _percent(model["ideal_issue_cycles"], model["issue_cycles"]),
            "model_vs_engine_percent": _percent(model["cycles"], cycles) if measured else None,
            "measured_vs_ideal_percent": None, "measured_compute_vs_ideal_percent": None,
        }
        if e["engine_mode"] == "layer" and "layer_cycles" in e and "dense_layer_cycles" in e:
            row.update(measured_ideal(art, k, e["layer_cycles"], e["dense_layer_cycles"]) or {})
        if e["engine_mode"] == "network" and "step_counters" in e and "dense_step_counters" in e:
            row.update(measured_network_ideal(e["program"], k, e["step_counters"], e["dense_step_counters"]) or {})
        if "switch" in e and e["switch"]["engine_cycles"] is not None:
            sw = e["switch"]
            row.update(switch_engine_cycles=sw["engine_cycles"], switch_bus_cycles=sw["bus_cycles"],
                       switch_fraction_of_image=(sw["engine_cycles"] + (sw["bus_cycles"] or 0)) / cycles)
            switch = switch or sw
        rows.append(row)
    return rows, switch, e



def plot_accuracy_latency(rows: list[dict], individual: list[dict], path: Path, clock_mhz: float) -> Path:
    """Accuracy (%) against latency per image (us at the clock): the sub-nets of one artifact on
    one engine, the dense-ternary baseline, and the individually trained models."""
    from .report import _figure, _save
    fig, ax = _figure(figsize=(6.4, 4.2))
    xs = [r["us_per_image"] for r in rows]
    ys = [r["accuracy_percent"] for r in rows]
    ax.plot(xs, ys, "o-", color="tab:blue", label="sub-nets of one artifact, one bitstream")
    for r in rows:
        ax.annotate(f"{r['name']} ({r['group_sparsity_percent']:.0f} % groups off)", (r["us_per_image"],
                    r["accuracy_percent"]), textcoords="offset points", xytext=(6, 4), fontsize=8)
    if individual:
        ax.plot([m["us_per_image_estimated"] for m in individual], [m["accuracy_percent"] for m in individual],
                "s", color="tab:orange", label="individually trained (AST benchmark" +
                (f", {individual[0]['steps']} steps each" if individual[0].get("steps") else "") +
                "; latency from sparsity)")
    if rows[0].get("dense_cycles_per_image"):
        dense = rows[0]["dense_cycles_per_image"] / clock_mhz
        ax.axvline(dense, color="gray", ls="--", lw=1, label=f"dense ternary, same engine ({dense:.0f} us)")
    ax.set_xlabel(f"latency per image at {clock_mhz:g} MHz (us, accelerated part, {rows[0]['cycles_from']})")
    ax.set_ylabel(f"top-1 accuracy (%), {rows[0]['images']} test images")
    ax.set_title("Dynamic inference: accuracy against latency")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)   # below: no point hidden
    ax.grid(alpha=0.3)
    return _save(fig, path)
