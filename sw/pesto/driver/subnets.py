"""What the driver knows about the sub-nets of an artifact (docs/dynamic.md): per sub-net its
group sparsity, its expected cycles on the build it runs on, and its measured accuracy; and the
policy that picks one under a latency budget.

Expected cycles come from the cycle model of the build: in network mode the v2 engine's
(``pesto.hwspec.program.Program.cycles``, one home: ``ConvStep.cycles``), in layer mode a v1
estimate (``layer_mode_cycles``: the streams of every layer plus its issued group passes).
Accuracy is what the artifact's sub-net metadata says was measured (docs/subnets.md:
``meta["accuracy"]["top1_percent"]``), never guessed. numpy only.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError
from ..hwspec import HwConfig, activation_words, output_words, weight_words


def accuracy_of(meta: dict) -> float | None:
    """Top-1 in percent from a sub-net's metadata, None if nothing was measured."""
    acc = (meta or {}).get("accuracy")
    if isinstance(acc, dict) and isinstance(acc.get("top1_percent"), (int, float)):
        return float(acc["top1_percent"])
    return None


def network_cycles(program, subnet: int, skip: bool = True) -> dict:
    """Cycles per image of sub-net ``subnet`` by the v2 cycle model: ``cycles`` (the whole run:
    input stream, every step, output stream) and ``issue_cycles`` (the PE array: the part group
    skipping shortens); and what they would be if every conv step's issue cycles were exactly
    its dense ones times its issued fraction of groups (``ideal_cycles``, ``ideal_issue_cycles``:
    "the latency follows G/G_k", layer by layer)."""
    rows, dense = program.cycles(subnet, skip), program.cycles(subnet, False)
    ideal, ideal_issue = weighted_ideal(program, subnet, [(r["total"], r.get("issue"), d.get("issue"))
                                                          for r, d in zip(rows, dense)], skip)
    return {"cycles": sum(r["total"] for r in rows), "issue_cycles": sum(r.get("issue", 0) for r in rows),
            "ideal_cycles": ideal, "ideal_issue_cycles": ideal_issue}


def weighted_ideal(program, subnet: int, steps, skip: bool = True) -> tuple[float, float]:
    """"The latency follows G/G_k", layer by layer: ``steps`` holds per program step its
    (cycles, issue cycles, dense issue cycles), issue None off the conv steps, from the cycle
    model or from the engine's counters alike. Returns (ideal cycles, ideal issue cycles): every
    conv step's issue cycles replaced by its dense ones times the fraction of its groups sub-net
    ``subnet`` issues (all of them with skip off), every other cycle as it is."""
    ideal = ideal_issue = 0.0
    for step, (total, issue, dense_issue) in zip(program.steps, steps):
        if issue is None:
            ideal += total
            continue
        fraction = float(step.issue[subnet].sum()) / step.issue[subnet].size if skip else 1.0
        ideal_issue += dense_issue * fraction
        ideal += total - issue + dense_issue * fraction
    return ideal, ideal_issue


def layer_mode_cycles(view, hw: HwConfig, skip: bool = True) -> dict:
    """A v1 (layer mode) estimate per image of the plain artifact ``view``: every accelerated layer
    streams its weights and activations in and its outputs back (one word per cycle) and spends
    Kh*Kw cycles per issued group per block of NUM_PE output pixels (docs/rtl.md); host layers,
    per-run overheads and the DMA set-up are left out."""
    from ..reference import network
    c, h, w = view.input_shape
    _, values = network.run(view, np.zeros((1, c, h, w), dtype=np.float32), trace=True, normalized=True)
    total = issue = 0
    for node in view.nodes:
        if node.op != "tconv":
            continue
        layer = node.layer
        _, _, ih, iw = values[node.inputs[0]].shape
        ho, wo = layer.out_hw(ih, iw)
        kh, kw = layer.kernel
        groups = layer.nnz_groups if skip else layer.out_channels * layer.groups
        compute = math.ceil(ho * wo / hw.num_pe) * groups * kh * kw
        issue += compute
        total += (weight_words(layer, hw.lanes) + activation_words(layer, ih, iw, hw.lanes)
                  + max(compute, output_words(layer.out_channels, ho, wo)))
    return {"cycles": total, "issue_cycles": issue, "ideal_cycles": None, "ideal_issue_cycles": None}


def subnet_rows(source, clock_mhz: float, program=None, hw: HwConfig | None = None,
                skip: bool = True) -> list[dict]:
    """One row per sub-net of the artifact ``source``: index, name, groups, issued groups, group
    sparsity, ideal speedup G/G_k, target sparsity and measured accuracy from its metadata, and
    expected cycles / us / images/s per image at ``clock_mhz`` (``program`` given: the v2 network
    model; else the layer-mode estimate on ``hw``)."""
    rows = []
    for stats in source.subnet_stats():
        k = stats["index"]
        meta = stats.get("meta") or {}
        model = network_cycles(program, k, skip) if program is not None else \
            layer_mode_cycles(source.subnet(k), hw or HwConfig(), skip)
        cycles = model["cycles"]
        rows.append({
            "index": k, "name": stats["name"],
            "groups": stats["groups"], "issued_groups": stats["nnz_groups"],
            "group_sparsity": stats["group_sparsity"], "speedup_ideal": stats["speedup_ideal"],
            "target_group_sparsity": meta.get("target_group_sparsity"),
            "accuracy_percent": accuracy_of(meta), "accuracy": meta.get("accuracy"),
            "cycles": cycles, "issue_cycles": model["issue_cycles"], "ideal_cycles": model["ideal_cycles"],
            "ideal_issue_cycles": model["ideal_issue_cycles"],
            "us": cycles / clock_mhz, "images_per_s": clock_mhz * 1e6 / cycles if cycles else float("inf"),
            "model": "network (v2 cycle model)" if program is not None else "layer mode (v1 estimate)",
        })
    return rows


def choose(rows: list[dict], budget_us: float, clock_mhz: float | None = None) -> dict:
    """The most accurate sub-net whose expected latency is within ``budget_us``. Sub-nets with a
    measured accuracy rank by it; those without come after them, the slower (more groups) first;
    ties go to the faster. ConfigError when none fits, naming the fastest."""
    if not isinstance(budget_us, (int, float)) or isinstance(budget_us, bool) or not budget_us > 0:
        raise ConfigError(f"latency budget must be a positive number of microseconds, got {budget_us!r}")
    fits = [r for r in rows if r["us"] <= budget_us]
    if not fits:
        fastest = min(rows, key=lambda r: r["us"])
        at = f" at {clock_mhz:g} MHz" if clock_mhz else ""
        raise ConfigError(f"no sub-net meets {budget_us:g} us per image: the fastest, {fastest['name']!r}, "
                          f"takes {fastest['us']:.1f} us{at}; raise the budget (or the clock), or train a "
                          f"sparser sub-net")

    def rank(r):
        acc = r["accuracy_percent"]
        return (acc is not None, acc if acc is not None else r["issued_groups"], -r["us"])
    return max(fits, key=rank)
