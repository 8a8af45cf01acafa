"""The per-model HLS network engine (accelerator v2's network mode in HLS C++, docs/hls.md).

``pesto hls MODEL.pesto --network`` compiles the artifact's accelerated chain, every sub-net of
it, into a network program (``pesto.hwspec.program.compile_network``) and renders a top for that
model (hls/pesto_net.cpp.j2): the program's code, program and parameter memories become ROMs,
each step one call with its decoded descriptor as constants, the layer-mode engine inside for
layer runs. Test vectors run every sub-net (skipping on and off) on real or seeded images and
the error cases; expected outputs come from the integer reference.

    net = network_context(program)                      # what the template needs
    render_project(out, network_cases(art, program, images), hw, network=net)
"""

from __future__ import annotations

import math
import re

import numpy as np

from ..errors import ConfigError
from ..hwspec import REGMAP, HwConfig, pack_outputs
from ..hwspec import program as P
from .vectors import VectorCase

ERR = REGMAP.error_codes


def network_context(program) -> dict:
    """The template context of one compiled network program: its memories as the engine's loader
    decodes them from the load stream, and per step the descriptor fields (decoded from the
    packed program memory, so the HLS engine consumes the format, not the Python objects)."""
    lanes = program.lanes
    words = program.words()
    loaded = P.parse(words, lanes)       # the engine's loader; refuses a malformed program
    prog = [int(loaded["prog"].get(i, 0)) for i in range(len(program.prog))]
    if prog != [int(v) for v in program.prog]:
        raise ConfigError("network program: the program memory does not survive its own load stream")
    n_codes = len(program.codes)
    code_beats = len(program.code_words) // n_codes if n_codes else 1
    codes = np.asarray(program.code_words, dtype=np.uint64).reshape(n_codes, code_beats) if n_codes else []
    ops = {v: k for k, v in P.OPS.items()}
    steps = []
    for i, step in enumerate(program.steps):
        d = prog[i * P.STEP_WORDS:(i + 1) * P.STEP_WORDS]
        fields = {name: P.STEP.get(d, name) for name in P.STEP.spec}
        tensors = {key: {name: P.TENSOR.get(d, name, at) for name in P.TENSOR.spec}
                   for key, at in P.FORMAT["tensor_at"].items()}
        steps.append({"i": i, "op": ops[fields["OP"]], "name": re.sub(r"[^A-Za-z0-9_.]", "_", step.name),
                      "f": fields, "t": tensors})
    bank_depth = _bank_depth(program)
    max_n = max([1] + [s.out_channels for s in program.conv_steps])
    record = {"steps": len(program.steps), "subnets": program.num_subnets, "names": list(program.names),
              "dense": bool(program.dense), "checksum": f"0x{program.checksum:08X}", "code_groups": n_codes,
              "program_words": len(prog), "parameter_entries": len(program.params), "bank_depth": bank_depth}
    return {
        "steps": steps, "subnets": program.num_subnets, "dense": bool(program.dense),
        "codes": [[int(w) for w in row] for row in codes], "code_beats": code_beats, "prog": prog,
        "params": [(int(m), int(s), int(b)) for m, s, b in program.params], "max_n": max_n,
        "bank_depth": bank_depth, "in_beats": len(program.input_words(np.zeros((program.input.channels,
                                                                                  program.input.h,
                                                                                  program.input.w), np.int16))),
        "out_beats": program.output_words(1), "load_words": len(words), "sum": int(words[-1]),
        "sched_base": program.sched_base, "sched_words": P.SCHED_WORDS, "ops": P.OPS,
        "fill": P.FILL_CYCLES,
        "fields": {"pass": P.PASS.spec, "entry": P.ENTRY.spec, "sched": P.SCHED.spec},
        "record": record,
    }


def network_build(program, base: HwConfig) -> HwConfig:
    """The HwConfig the rendered engine reports: the layer-mode build ``base`` plus the network
    memories this program fills exactly (HWCFG2/3) and the sub-nets it holds."""
    from dataclasses import replace
    return replace(base, caps=3, code_depth=len(program.codes), param_depth=len(program.params),
                   prog_depth=4 * math.ceil(len(program.prog) / 4),
                   bank_depth=_bank_depth(program), max_subnets=program.num_subnets)


def _bank_depth(program) -> int:
    """Activation words per bank the program's tensors reach."""
    return max([1] + [t.base + t.bank_words for s in program.steps for t in (s.a, s.d, s.b) if t is not None])


def network_run_case(program, x: np.ndarray, want: np.ndarray, subnet: int, skip: bool,
                     name: str | None = None) -> VectorCase:
    """One network run of int16 chain inputs x (B, C, H, W) with ``subnet``; ``want`` the
    reference's chain outputs (B, N, H, W)."""
    images = len(x)
    regs = {"SUBNET": subnet, "NUM_IMAGES": images,
            "MODE": REGMAP["MODE"].encode(NETWORK=1, SKIP_EN=int(skip))}
    expected = np.concatenate([pack_outputs(y) for y in want])
    groups = images * sum(s.cycles(subnet, skip)["entries"] for s in program.conv_steps)
    name = name or f"net_{program.names[subnet] if program.names else subnet}_{'skip' if skip else 'dense'}"
    return VectorCase(re.sub(r"[^A-Za-z0-9_.-]", "_", name), regs, program.input_words(x), expected, groups=groups,
                      meta={"subnet": subnet, "skip": skip, "images": images})


def network_cases(art, program, images: np.ndarray, dense: bool = True, errors: bool = True) -> list[VectorCase]:
    """Every sub-net on ``images`` (raw, through the host layers to the chain's input), skipping on
    and, with dense schedules, off; then the error cases and a load of the program itself."""
    from ..sim.networks import chain_io
    cases = []
    first = None
    for k in range(program.num_subnets):
        x, want = chain_io(art, images, subnet=k)
        for skip in (True, False) if dense and program.dense else (True,):
            cases.append(network_run_case(program, x, want, k, skip))
        first = first or (x, want)
    if not errors:
        return cases
    x, want = first
    good = network_run_case(program, x[:1], want[:1], 0, True, name="net_good")
    beats, packet = good.beats, np.zeros(1, dtype=np.uint64)      # the one-word error packet
    n = len(beats)
    lasts = np.zeros(n, dtype=bool)
    lasts[n // 2 - 1] = lasts[-1] = True
    cases += [
        good,
        VectorCase("net_bad_subnet", {**good.writes, "SUBNET": program.num_subnets}, beats, packet,
                   status=ERR["BAD_SUBNET"], groups=0),
        VectorCase("net_stream_short", good.writes, beats, packet, lasts=lasts, status=ERR["STREAM_SHORT"],
                   groups=0, unread=n - n // 2),
        VectorCase("net_stream_long", good.writes, np.concatenate([beats, beats[:3]]), packet,
                   status=ERR["STREAM_LONG"], groups=0),
        VectorCase("load_own_program", {"MODE": REGMAP["MODE"].encode(LOAD_PROGRAM=1)}, program.words(),
                   np.zeros(0, dtype=np.uint64), groups=0),
    ]
    other = program.words().copy()
    other[-2] ^= np.uint64(1)                                        # another program (its sum fixed)
    other[-1] = np.uint64(int(sum(int(w) for w in other[:-1]) & ((1 << 64) - 1)))
    cases.append(VectorCase("load_other_program", {"MODE": REGMAP["MODE"].encode(LOAD_PROGRAM=1)}, other,
                            np.zeros(0, dtype=np.uint64), status=ERR["BAD_PROGRAM"], groups=0))
    if not program.dense:
        cases.append(VectorCase("net_no_dense", {**good.writes, "MODE": REGMAP["MODE"].encode(NETWORK=1)}, beats,
                                packet, status=ERR["NO_DENSE"], groups=0))
    cases.append(network_run_case(program, x[:1], want[:1], 0, True, name="net_good_again"))
    return cases


def layer_shapes(art) -> list:
    """(layer, h, w) of every accelerated layer of every sub-net: what the layer-mode engine
    inside the network top must run (``fit_hw`` sizes it)."""
    from ..reference import network
    shapes = []
    c, h, w = art.input_shape
    for k in range(art.num_subnets):
        def record(x, layer):
            shapes.append((layer, x.shape[2], x.shape[3]))
            from ..reference import run_conv
            return run_conv(x, layer)
        network.run(art.subnet(k), np.zeros((1, c, h, w), dtype=np.float32), conv=record, normalized=True)
    return shapes


def render_model(art, out_dir, images: np.ndarray | None = None, dense: bool = True,
                 base: HwConfig | None = None, source: str | None = None):
    """The per-model HLS project of ``art`` in ``out_dir``: its network program (every sub-net,
    ``dense`` schedules too) baked into the top, the layer-mode engine sized for its layers,
    test vectors of every sub-net on ``images`` (raw) and the error cases when given.
    Returns (project folder, program, build)."""
    from .render import HLS_DEFAULT, fit_hw, render_project
    base = base or HLS_DEFAULT
    program = P.compile_network(art, replace_caps(base), dense=dense)
    hw = fit_hw(layer_shapes(art), base)
    cases = network_cases(art, program, images, dense) if images is not None else []
    names = ", ".join(program.names) if program.names else "one network"
    source = source or f"{(art.meta.get('model') or {}).get('name', 'artifact')} ({program.num_subnets} sub-net(s): {names})"
    out = render_project(out_dir, cases, hw, source=source, network=network_context(program))
    return out, program, network_build(program, hw)


def replace_caps(hw: HwConfig) -> HwConfig:
    from dataclasses import replace
    return replace(hw, caps=3)


def open_csim(art, project=None):
    """The per-model HLS engine of ``art`` in C simulation, as a driver Bus (``CSimBus``):
    ``project`` a rendered project folder (another model's, e.g. to see what the driver says
    about a build for other sub-nets), else one rendered for ``art`` now (under the C-sim cache,
    ``pesto.hls.csim.cache_dir``; g++ runs once per model). A network that network mode cannot
    run gets the layer-mode engine sized for its layers (the driver then runs it layer by layer)."""
    import hashlib
    from ..artifact import to_bytes
    from ..errors import UnsupportedLayerError
    from .bus import CSimBus
    from .csim import cache_dir, compile_tb
    if project is None:
        digest = hashlib.sha256(to_bytes(art)).hexdigest()[:16]
        project = cache_dir() / "models" / digest
        try:
            render_model(art, project)
        except UnsupportedLayerError:
            from .render import HLS_DEFAULT, fit_hw, render_project
            render_project(project, [], fit_hw(layer_shapes(art), HLS_DEFAULT), source="layer mode")
    return CSimBus(compile_tb(project))
