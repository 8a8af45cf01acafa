"""`pesto hls`: render the HLS project of an artifact (or of layer configurations), optionally
C-simulate it right away with g++.

    pesto hls model.pesto -o build/hls               # every accelerated layer of the artifact
    pesto hls model.pesto --network -o build/hls     # that model's network engine (v2): every sub-net
    pesto hls --layer table7 -o build/hls --csim     # the three table 7 layers, then g++ C-sim
    pesto hls --layer '{"out_channels": 32, "in_channels": 16, "in_h": 16, "in_w": 16}' -o DIR
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from ..errors import ConfigError
from ..util import atomic_write_text
from ..validate import existing_file, int_range, output_folder, positive_int, seed_int
from .render import HLS_DEFAULT, TOOL_VERSIONS, fit_hw, render_project


def configure(p):
    p.add_argument("artifact", nargs="?", type=existing_file, help="exported artifact (pesto export-to-fpga)")
    p.add_argument("-o", "--output", type=output_folder, required=True, help="project folder to write")
    p.add_argument("--layer", action="append", default=[], metavar="SPEC",
                   help="layer configuration instead of (or besides) an artifact: table7, table7:stage2, "
                        "a JSON file or inline JSON (keys: out_channels, in_channels, in_h, in_w, kernel, "
                        "stride, padding, cg, nnz_groups | group_sparsity, relu, seed)")
    p.add_argument("--images", type=int_range(1, 1000), default=1,
                   help="artifact images whose layer inputs become test vectors (1..1000, default 1)")
    p.add_argument("--lanes", type=positive_int, default=HLS_DEFAULT.lanes,
                   help="channels per PE group word: 4, 8, 16 or 32")
    p.add_argument("--num-pe", type=positive_int, default=HLS_DEFAULT.num_pe,
                   help="parallel PEs (output pixels): a power of two from 4 to 64")
    p.add_argument("--no-dense", action="store_true", help="test vectors with group skipping only")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of synthetic layers and random images")
    p.add_argument("--csim", action="store_true", help="then build with g++ and run the C testbench here")
    p.add_argument("--network", action="store_true",
                   help="render the artifact's network engine: its network program (every sub-net) baked into a "
                        "per-model top, with the layer-mode engine inside (docs/hls.md)")


def validate(args) -> None:
    """The command line alone (usage errors, exit 2): inputs given, a buildable engine, layer specs."""
    from .render import check_hw
    from .sources import parse_layer_spec
    if args.artifact is None and not args.layer:
        raise ConfigError("give an artifact (pesto hls MODEL.pesto -o DIR) or at least one --layer")
    check_hw(replace(HLS_DEFAULT, lanes=args.lanes, num_pe=args.num_pe))
    for spec in args.layer:
        parse_layer_spec(spec, args.seed)


def run(args) -> int:
    from ..util import claim_output
    from . import sources

    validate(args)
    with claim_output(args.output):   # a second `pesto hls` into the same folder is refused
        return _render(args, sources)


def _render(args, sources) -> int:
    base = replace(HLS_DEFAULT, lanes=args.lanes, num_pe=args.num_pe)
    if args.network:
        return run_network(args, base)
    works = []
    if args.artifact is not None:
        works.append(sources.from_artifact(args.artifact, base.lanes, args.images, not args.no_dense, args.seed))
    if args.layer:
        works.append(sources.from_specs(args.layer, base.lanes, not args.no_dense, args.seed))
    shapes = [s for w in works for s in w.shapes]
    cases = [c for w in works for c in w.cases]
    hw = fit_hw(shapes, base)
    out = render_project(args.output, cases, hw, source="; ".join(w.source for w in works),
                         layers=[d for w in works for d in w.layers])
    print(f"wrote {out}: Vitis HLS {TOOL_VERSIONS['vitis_hls']} project, {len(shapes)} layers, {len(cases)} test "
          f"cases; LANES={hw.lanes} NUM_PE={hw.num_pe} log2 depths act={hw.log2_act_depth} "
          f"wgt={hw.log2_wgt_depth} N={hw.log2_max_n} pix={hw.log2_max_pix}")
    print(f"  run it: cd {out} && vitis_hls -f run_hls.tcl")
    if not args.csim:
        return 0
    from .csim import compile_tb, run_tb

    binary = compile_tb(out)
    result = run_tb(binary.resolve(), cwd=out)
    rows = []
    for name, r in result.cases.items():
        print(f"  {'PASS' if r.passed else 'FAIL'} {name}: status={r.status} groups={r.groups} "
              f"compute_cycles={r.compute_cycles} (modelled)")
        dense = result.cases.get(name[:-len("_skip")] + "_dense") if name.endswith("_skip") else None
        if dense is not None:
            rows.append({"case": name[:-len("_skip")], "groups_skip": r.groups, "groups_dense": dense.groups,
                         "compute_cycles_skip": r.compute_cycles, "compute_cycles_dense": dense.compute_cycles,
                         "speedup_modelled": round(dense.compute_cycles / max(r.compute_cycles, 1), 3),
                         "speedup_ideal": round(dense.groups / max(r.groups, 1), 3)})
    for row in rows:
        print(f"  {row['case']}: modelled speedup {row['speedup_modelled']:.2f}x "
              f"(ideal G/G_nz {row['speedup_ideal']:.2f}x)")
    atomic_write_text(out / "csim_results.json", json.dumps(
        {"passed": result.passed, "failed": result.failed, "hw": result.hw, "speedups": rows,
         "cases": {k: vars(v) for k, v in result.cases.items()}}, indent=2) + "\n")
    print(f"C simulation (g++): {result.passed} passed, {result.failed} failed (results: {out / 'csim_results.json'})")
    return 0 if result.failed == 0 else 1


def run_network(args, base) -> int:
    """`pesto hls MODEL --network`: the per-model network engine and its vectors (every sub-net,
    skipping on and off, on --images images; the error cases)."""
    from .. import artifact as artifact_mod
    from .network import render_model
    from .sources import sample_images
    if args.artifact is None or args.layer:
        raise ConfigError("--network renders one artifact's network engine: give the artifact and no --layer")
    art = artifact_mod.load(args.artifact)
    images, what = sample_images(art, args.images, args.seed)
    out, program, hw = render_model(art, args.output, images, dense=not args.no_dense, base=base)
    print(f"wrote {out}: network engine of {args.artifact.name} ({len(program.steps)} steps, {program.num_subnets} "
          f"sub-net(s), {len(program.codes)} code groups stored once, checksum 0x{program.checksum:08X}); test "
          f"vectors on {what}")
    print(f"  run it: cd {out} && vitis_hls -f run_hls.tcl")
    if not args.csim:
        return 0
    from .csim import compile_tb, run_tb
    result = run_tb(compile_tb(out).resolve(), cwd=out)
    for name, r in result.cases.items():
        print(f"  {'PASS' if r.passed else 'FAIL'} {name}: status={r.status} groups={r.groups} "
              f"cycles={r.cycles} (modelled)")
    atomic_write_text(out / "csim_results.json", json.dumps(
        {"passed": result.passed, "failed": result.failed, "hw": result.hw,
         "cases": {k: vars(v) for k, v in result.cases.items()}}, indent=2) + "\n")
    print(f"C simulation (g++): {result.passed} passed, {result.failed} failed (results: {out / 'csim_results.json'})")
    return 0 if result.failed == 0 else 1
