"""The network program of accelerator v2 (docs/accelerator-v2.md): compile, pack, model, check.

The accelerated part of a network (the chain from its first ``quantize`` to its last
``dequantize``) becomes a list of steps (input, conv with an optional fused residual add, add,
shortcut, relu, output) over tensors in the engine's activation memory, plus the memories the
steps read: the codes of every stored hardware group once, per (step, sub-net) an issue schedule
(passes of entries) and an output stage. ``compile_network`` builds it from an ``Artifact``,
``Program.words`` is the load stream, ``Program.execute`` runs the *packed* program in numpy
(decoding the memory images the engine receives, so the format itself is checked against
``pesto.reference``), ``ConvStep.cycles`` is the engine's cycle model and ``Program.check_fits``
the fit check against a build. The field layouts live in program.json (rendered into
hw/rtl/pesto_program.vh by ``pesto hwspec``). numpy only: this runs on the board.

    prog = compile_network(artifact, hw)          # hw: HwConfig of the engine (check_identity)
    words = prog.words()                          # the MODE.LOAD_PROGRAM stream
    y = prog.execute(x_int16, subnet=0, skip=True)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from .. import numerics
from ..errors import ConfigError, UnsupportedLayerError
from ..ir import SharedTernaryConv
from .protocol import HwConfig, channels_per_group, encode_codes

TILE = 2                       # output pixels per tile side: 2 x 2 PEs
TAPS = 9                       # every PE takes a 3x3 window (1x1 kernels use the centre tap)
FILL_CYCLES = {1: 2, 2: 6}     # shortest pass by stride: the window fill (8 words per cycle from 4 banks x 2 ports)
STEP_OVERHEAD = 20             # cycles a conv step adds beyond its issue and last drain (pipeline fill/drain)


# -- the format -------------------------------------------------------------------------------

class Fields:
    """Named bit fields: {name: [lsb, msb]} of one word, or {name: [word, lsb, msb]} of a record."""

    def __init__(self, spec: dict, words: int | None = None):
        self.words = words
        self.spec = {k: (tuple(v) if len(v) == 3 else (0, *v)) for k, v in spec.items()}

    def width(self, name: str) -> int:
        _, lsb, msb = self.spec[name]
        return msb - lsb + 1

    def pack(self, out: list[int] | None = None, offset: int = 0, **values: int) -> list[int]:
        """Encode values into ``words`` 32-bit words (or one int for a single-word layout)."""
        out = out if out is not None else [0] * (self.words or 1)
        for name, v in values.items():
            word, lsb, msb = self.spec[name]
            v = int(v)
            if not 0 <= v < (1 << (msb - lsb + 1)):
                raise ConfigError(f"program field {name} = {v} does not fit in {msb - lsb + 1} bits")
            out[offset + word] |= v << lsb
        return out

    def get(self, words, name: str, offset: int = 0) -> int:
        word, lsb, msb = self.spec[name]
        return (int(words[offset + word]) >> lsb) & ((1 << (msb - lsb + 1)) - 1)


def _load_format() -> dict:
    return json.loads(resources.files(__package__).joinpath("program.json").read_text())


FORMAT = _load_format()
HEADER = Fields(FORMAT["header"])
CHUNK = Fields(FORMAT["chunk"])
STEP = Fields(FORMAT["step"], FORMAT["step_words"])
TENSOR = Fields(FORMAT["tensor"], FORMAT["tensor_words"])
SCHED = Fields(FORMAT["sched"], FORMAT["sched_words"])
PASS = Fields(FORMAT["pass"])
ENTRY = Fields(FORMAT["entry"])
OPS = FORMAT["ops"]
MEMORIES = FORMAT["memories"]
LIMITS = FORMAT["limits"]
STEP_WORDS = FORMAT["step_words"]
SCHED_WORDS = FORMAT["sched_words"]


def render_verilog_header() -> str:
    """localparams of the program format for the RTL (hw/rtl/pesto_program.vh)."""
    lines = ["// Generated from sw/pesto/hwspec/program.json by `pesto hwspec` -- do not edit.",
             "// tests/test_program.py fails when this file and program.json disagree.",
             f"localparam [31:0] PROG_MAGIC = 32'h{FORMAT['magic']:08X};",
             f"localparam integer PROG_VERSION = {FORMAT['version']};",
             f"localparam integer PROG_STEP_WORDS = {STEP_WORDS};",
             f"localparam integer PROG_SCHED_WORDS = {SCHED_WORDS};",
             f"localparam integer PROG_TENSOR_WORDS = {FORMAT['tensor_words']};"]
    for name, value in OPS.items():
        lines.append(f"localparam [3:0] PROG_OP_{name} = 4'd{value};")
    for name, value in MEMORIES.items():
        lines.append(f"localparam [3:0] PROG_MEM_{name} = 4'd{value};")
    for name, value in FORMAT["beats_per_entry"].items():
        lines.append(f"localparam integer PROG_BEATS_{name} = {value};")
    lines.append("// a code group takes ceil(18 * LANES / 64) words (CODE_BEATS in the loader)")
    for name, value in LIMITS.items():
        lines.append(f"localparam integer PROG_LIMIT_{name} = {value};")
    for name, at in FORMAT["tensor_at"].items():
        lines.append(f"localparam integer PROG_TENSOR_{name} = {at};")
    for prefix, fields in (("HDR", HEADER), ("CHUNK", CHUNK), ("STEP", STEP), ("TENSOR", TENSOR),
                           ("SCHED", SCHED), ("PASS", PASS), ("ENTRY", ENTRY)):
        for name, (word, lsb, msb) in fields.spec.items():
            if prefix in ("STEP", "TENSOR", "SCHED"):
                lines.append(f"localparam integer PROG_{prefix}_{name}_WORD = {word};")
            lines.append(f"localparam integer PROG_{prefix}_{name}_LSB = {lsb};")
            lines.append(f"localparam integer PROG_{prefix}_{name}_MSB = {msb};")
    return "\n".join(lines) + "\n"


# -- tensors ----------------------------------------------------------------------------------

@dataclass(eq=False)
class Tensor:
    """An int16 tensor in the activation memory: (g, y, x) words of ``lanes`` channels, pixel (y, x)
    in bank ((y + phase) mod 2, (x + phase) mod 2) at base + g*plane + ((y+phase)>>1)*w2 + ((x+phase)>>1)."""

    name: str
    channels: int
    h: int
    w: int
    lanes: int
    base: int = -1
    phase: int = 1

    @property
    def groups(self) -> int:
        return math.ceil(self.channels / self.lanes)

    @property
    def h2(self) -> int:
        return (self.h - 1 + self.phase) // 2 + 1

    @property
    def w2(self) -> int:
        return (self.w - 1 + self.phase) // 2 + 1

    @property
    def plane(self) -> int:
        return self.h2 * self.w2

    @property
    def bank_words(self) -> int:
        """Words this tensor occupies in each of the four banks."""
        return self.groups * self.plane

    def descriptor(self, out: list[int], offset: int) -> None:
        TENSOR.pack(out, offset, BASE=self.base, PHASE=self.phase, G=self.groups,
                    H=self.h, W=self.w, W2=self.w2, PLANE=self.plane)


def tensor_from(words, offset: int, lanes: int) -> Tensor:
    t = Tensor("?", TENSOR.get(words, "G", offset) * lanes, TENSOR.get(words, "H", offset),
               TENSOR.get(words, "W", offset), lanes, TENSOR.get(words, "BASE", offset),
               TENSOR.get(words, "PHASE", offset))
    if (t.w2, t.plane) != (TENSOR.get(words, "W2", offset), TENSOR.get(words, "PLANE", offset)):
        raise ConfigError("program: a tensor's W2/PLANE disagree with its H, W and phase")
    return t


# -- steps ------------------------------------------------------------------------------------

def _shifts(f_from: int, f_to: int) -> tuple[int, int]:
    """(left, right) shift of numerics.rescale from f_from to f_to."""
    return (f_to - f_from, 0) if f_to >= f_from else (0, min(f_from - f_to, LIMITS["RSH"]))


@dataclass
class Schedule:
    """What one sub-net runs of a conv step: passes [(g, [(n, code, first, nz)])], active channels."""

    passes: list[tuple[int, list[tuple[int, int, int, int]]]]
    active: np.ndarray          # bool (N,): the channel has an issued entry
    mult: np.ndarray
    shift: np.ndarray
    bias: np.ndarray

    @property
    def entries(self) -> int:
        return sum(len(e) for _, e in self.passes)


@dataclass
class Step:
    op: str
    a: Tensor | None = None          # source (conv input, add's first operand, ...)
    d: Tensor | None = None          # destination
    b: Tensor | None = None          # residual / second operand
    name: str = ""

    def descriptor(self) -> list[int]:
        w = [0] * STEP_WORDS
        STEP.pack(w, OP=OPS[self.op.upper()])
        for key in ("a", "d", "b"):
            t = getattr(self, key)
            if t is not None:
                t.descriptor(w, FORMAT["tensor_at"][key.upper()])
        self._fields(w)
        return w

    def _fields(self, w: list[int]) -> None:
        pass

    def vec_cycles(self) -> int:
        return 0


@dataclass
class ConvStep(Step):
    """One accelerated layer, every sub-net of it. ``layer`` holds the codes once and K stages."""

    layer: SharedTernaryConv | None = None
    lanes: int = 16
    add: tuple[int, int, int, int, bool] | None = None   # fused residual: lsh_a, rsh_a, lsh_b, rsh_b, relu
    group_cycles: int = 1                 # the engine's PE-array cycles per issued group (HwConfig)
    code_base: int = 0
    stored: np.ndarray | None = None      # bool (N, G_hw): hardware groups with codes stored
    issue: list[np.ndarray] = field(default_factory=list)   # per sub-net bool (N, G_hw)
    codes_hw: np.ndarray | None = None    # int8 (N, G_hw, 9, lanes)

    def __post_init__(self):
        self.op = "conv"
        layer, lanes = self.layer, self.lanes
        n, c, kh, _ = layer.codes.shape
        g = math.ceil(c / lanes)
        padded = np.zeros((n, g * lanes, kh, kh), dtype=np.int8)
        padded[:, :c] = layer.codes
        grouped = padded.reshape(n, g, lanes, kh, kh).transpose(0, 1, 3, 4, 2)  # (N, G, kh, kw, lanes)
        full = np.zeros((n, g, 3, 3, lanes), dtype=np.int8)
        if kh == 3:
            full[:] = grouped
        else:
            full[:, :, 1, 1] = grouped[:, :, 0, 0]
        self.codes_hw = full.reshape(n, g, TAPS, lanes)
        self.stored = (self.codes_hw != 0).any(axis=(2, 3))
        self.issue = []
        for k in range(layer.num_subnets):
            sub = layer.subnet(k).codes
            subp = np.zeros((n, g * lanes, kh, kh), dtype=np.int8)
            subp[:, :c] = sub
            self.issue.append((subp.reshape(n, g, -1) != 0).any(axis=2) & self.stored)
        if layer.num_subnets > 1 and layer.cg % lanes:
            raise UnsupportedLayerError(
                f"layer {layer.name!r}: Cg={layer.cg} with {layer.num_subnets} sub-nets on an engine of "
                f"{lanes} lanes: network mode shares codes per {lanes}-channel hardware group, which "
                f"sub-nets of a smaller Cg could split; export with a Cg that is a multiple of {lanes}")
        channels_per_group(layer.cg, lanes)

    @property
    def kernel(self) -> int:
        return self.layer.codes.shape[2]

    @property
    def out_channels(self) -> int:
        return self.layer.codes.shape[0]

    @property
    def groups(self) -> int:
        return self.stored.shape[1]

    @property
    def stride(self) -> int:
        return self.layer.stride

    @property
    def pad(self) -> int:
        """The window's padding: 1x1 kernels use the centre of a virtually padded 3x3 window."""
        return self.layer.padding if self.kernel == 3 else 1

    @property
    def blocks(self) -> int:
        return math.ceil(self.d.h / TILE) * math.ceil(self.d.w / TILE)

    def code_order(self) -> list[tuple[int, int]]:
        """The stored hardware groups in code-memory order (g-major)."""
        return [(n, g) for g in range(self.groups) for n in range(self.out_channels) if self.stored[n, g]]

    def code_addresses(self) -> np.ndarray:
        addr = np.full(self.stored.shape, -1, dtype=np.int64)
        for i, (n, g) in enumerate(self.code_order()):
            addr[n, g] = self.code_base + i
        return addr

    def schedule(self, k: int, skip: bool) -> Schedule:
        """Sub-net k's passes: with skipping its issued groups, without every (n, g)."""
        n_out, g_hw = self.stored.shape
        addr = self.code_addresses()
        issue = self.issue[k]
        passes, seen = [], np.zeros(n_out, dtype=bool)
        for g in range(g_hw):
            if skip:
                entries = [(n, int(addr[n, g]), int(not seen[n]), 1) for n in range(n_out) if issue[n, g]]
            else:
                entries = [(n, max(int(addr[n, g]), 0), int(g == 0), int(issue[n, g])) for n in range(n_out)]
            for n, *_ in entries:
                seen[n] = True
            if entries:
                passes.append((g, entries))
        st = self.layer.stages[k]
        return Schedule(passes, seen.copy(), st.mult, st.shift, st.bias)

    def _fields(self, w: list[int]) -> None:
        STEP.pack(w, KERNEL=3, STRIDE=self.stride, PAD=self.pad, RELU=int(self.layer.relu),
                  N=self.out_channels, C_IN=self.layer.codes.shape[1])
        if self.add is not None:
            la, ra, lb, rb, relu = self.add
            STEP.pack(w, RES=1, ADD_RELU=int(relu), LSH_A=la, RSH_A=ra, LSH_B=lb, RSH_B=rb)

    # -- the cycle model (docs/accelerator-v2.md) ---------------------------------------------
    def cycles(self, k: int = 0, skip: bool = True) -> dict:
        """Cycles of this step on the engine for sub-net k (see ``conv_cycles``)."""
        sch = self.schedule(k, skip)
        active = sch.active if skip else np.ones(self.out_channels, dtype=bool)
        return conv_cycles([len(e) for _, e in sch.passes], self.blocks, self.stride, active, self.lanes,
                           fused=self.add is not None, group_cycles=self.group_cycles)


@dataclass
class VecStep(Step):
    """add / shortcut / relu / copy: one word per cycle (two for add) through the vector unit."""

    lsh_a: int = 0
    rsh_a: int = 0
    lsh_b: int = 0
    rsh_b: int = 0
    relu: bool = False
    stride: int = 1
    pad_before: int = 0

    def _fields(self, w: list[int]) -> None:
        if self.op == "add":
            STEP.pack(w, LSH_A=self.lsh_a, RSH_A=self.rsh_a, LSH_B=self.lsh_b, RSH_B=self.rsh_b,
                      ADD_RELU=int(self.relu))
        elif self.op == "relu":
            STEP.pack(w, RELU=int(self.relu))
        elif self.op == "shortcut":
            STEP.pack(w, STRIDE=self.stride, PAD_BEFORE=self.pad_before, C_IN=self.a.channels,
                      N=self.d.channels)

    def vec_cycles(self) -> int:
        words = self.d.groups * self.d.h * self.d.w
        return (2 if self.op == "add" else 1) * words + 8


@dataclass
class StreamStep(Step):
    """input (the stream into a tensor) or output (a tensor out in (n, y, x) order)."""

    def _fields(self, w: list[int]) -> None:
        if self.op == "output":
            STEP.pack(w, N=self.a.channels)

    def beats(self) -> int:
        t = self.d if self.op == "input" else self.a
        if self.op == "input":
            return t.groups * t.h * t.w * t.lanes // 4
        return math.ceil(t.channels * t.h * t.w / 4)


def conv_cycles(pass_entries: list[int], blocks: int, stride: int, active: np.ndarray, lanes: int,
                fused: bool = False, group_cycles: int = 1) -> dict:
    """The cycle model of a conv step (docs/accelerator-v2.md), the one home for both modes.

    pass_entries: entries of every pass of the schedule (the same for every tile); blocks: 2 x 2
    tiles of the output; active: bool (N,) channels with an issued entry. A pass costs
    max(group_cycles * entries, F) cycles (group_cycles: HwConfig.group_cycles, the cycles the
    PEs take per entry; F: the window fill, 2 at stride 1, 6 at stride 2); a tile's drain
    (sum over word groups of max(1, active channels), at least 4 per group with a fused add)
    runs beside the next tiles (three accumulator banks) and only bounds the tile rate where it
    is longer than the tile; the last tile's drain and the pipeline add a constant."""
    fill = FILL_CYCLES[stride]
    per_block = sum(max(group_cycles * e, fill) for e in pass_entries)
    groups_out = math.ceil(len(active) / lanes)
    drain = sum(max(1, int(active[w * lanes:(w + 1) * lanes].sum())) for w in range(groups_out))
    if fused:
        drain = max(drain, 4 * groups_out)
    period = max(per_block, drain)
    issue = (blocks - 1) * period + per_block if blocks else 0
    return {"issue": issue, "per_block": per_block, "drain_per_block": drain,
            "drain_bound": (blocks - 1) * (period - per_block) if blocks else 0,
            "entries": int(sum(pass_entries)), "passes": len(pass_entries), "fill": fill,
            "total": issue + drain + STEP_OVERHEAD}


def layer_cycles(layer, h: int, w: int, lanes: int, skip: bool = True, group_cycles: int = 1) -> dict:
    """The conv step of a layer-mode run (the engine builds its schedule from the v1 weight
    packet: hardware groups as ``protocol.hw_codes`` maps them), in ``conv_cycles``' terms."""
    from .protocol import hw_codes
    hwc = hw_codes(layer, lanes)
    n, g = hwc.shape[:2]
    nz = (hwc != 0).reshape(n, g, -1).any(axis=2)
    if skip:
        entries = [int(nz[:, gi].sum()) for gi in range(g) if nz[:, gi].any()]
        active = nz.any(axis=1)
    else:
        entries, active = [n] * g, np.ones(n, dtype=bool)
    ho, wo = layer.out_hw(h, w)
    blocks = math.ceil(ho / TILE) * math.ceil(wo / TILE)
    return conv_cycles(entries, blocks, layer.stride, active, lanes, group_cycles=group_cycles)


# -- the program -------------------------------------------------------------------------------

@dataclass
class Program:
    steps: list[Step]
    lanes: int
    num_subnets: int
    dense: bool
    input: Tensor
    output: Tensor
    code_words: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    prog: list[int] = field(default_factory=list)           # 32-bit program-memory words
    params: list[tuple[int, int, int]] = field(default_factory=list)   # (mult, shift, bias) per entry
    codes: np.ndarray | None = None                         # int8 (entries, 9, lanes)
    sched_base: int = 0
    names: list[str] = field(default_factory=list)         # the sub-nets' names

    @property
    def conv_steps(self) -> list[ConvStep]:
        return [s for s in self.steps if isinstance(s, ConvStep)]

    # -- packing --------------------------------------------------------------------------
    def words(self) -> np.ndarray:
        """The MODE.LOAD_PROGRAM stream: header, chunks (code, program, parameters), end + sum."""
        out = [HEADER.pack(STEPS=len(self.steps), SUBNETS=self.num_subnets, DENSE=int(self.dense),
                           VERSION=FORMAT["version"], MAGIC=FORMAT["magic"])[0]]

        def chunk(memory: str, data: np.ndarray, entries: int) -> None:
            out.append(CHUNK.pack(MEMORY=MEMORIES[memory], START=0, LENGTH=entries)[0])
            out.extend(int(v) for v in data)

        chunk("CODE", self.code_words, len(self.codes))
        rows = self.prog + [0] * (len(self.prog) % 2)
        chunk("PROG", [rows[i] | rows[i + 1] << 32 for i in range(0, len(rows), 2)], len(rows) // 2)
        par = []
        for mult, shift, bias in self.params:
            par += [int(bias) & ((1 << 64) - 1), (int(mult) & 0xFFFF) | int(shift) << 16]
        chunk("PARAM", par, len(self.params))
        out.append(CHUNK.pack(MEMORY=MEMORIES["END"])[0])
        out.append(sum(out) & ((1 << 64) - 1))
        return np.array(out, dtype=np.uint64)

    @property
    def checksum(self) -> int:
        """The low 32 bits of the program's sum, as the PROGRAM_SUM register reports it."""
        return int(self.words()[-1]) & 0xFFFFFFFF

    def input_words(self, x: np.ndarray) -> np.ndarray:
        """The stream of one run: int16 x (C, H, W) or (B, C, H, W) in the v1 activation layout."""
        from .protocol import _pack
        x = np.asarray(x)
        x = x[None] if x.ndim == 3 else x
        t = self.input
        if x.ndim != 4 or x.shape[1:] != (t.channels, t.h, t.w) or x.dtype != np.int16:
            raise ConfigError(f"network input must be int16 (B, {t.channels}, {t.h}, {t.w}), got {x.dtype} {x.shape}")
        padded = np.zeros((x.shape[0], t.groups * self.lanes, t.h, t.w), dtype=np.int16)
        padded[:, :t.channels] = x
        words = padded.reshape(x.shape[0], t.groups, self.lanes, t.h, t.w).transpose(0, 1, 3, 4, 2)
        return _pack(words.reshape(-1).view(np.uint16), 16)

    def output_words(self, images: int = 1) -> int:
        t = self.output
        return images * math.ceil(t.channels * t.h * t.w / 4)

    def unpack_output(self, words: np.ndarray, images: int = 1) -> np.ndarray:
        from .protocol import unpack_outputs
        t = self.output
        per = self.output_words(1)
        return np.stack([unpack_outputs(words[i * per:(i + 1) * per], t.channels, t.h, t.w)
                         for i in range(images)])

    # -- the fit check ----------------------------------------------------------------------
    def check_fits(self, hw: HwConfig) -> None:
        """Refuse, before anything is sent, a program the build cannot hold (naming the memory)."""
        if hw.lanes != self.lanes:
            raise UnsupportedLayerError(f"the program was compiled for {self.lanes} lanes, the engine has {hw.lanes}")
        need = [("code memory groups", len(self.codes), hw.code_depth, "CODE_DEPTH"),
                ("program memory words", len(self.prog), hw.prog_depth, "PROG_DEPTH"),
                ("parameter memory entries", len(self.params), hw.param_depth, "PARAM_DEPTH"),
                ("sub-nets", self.num_subnets, hw.max_subnets, "MAX_SUBNETS")]
        for s in self.steps:
            for t in (s.a, s.d, s.b):
                if t is not None:
                    need.append((f"activation words of {t.name!r} in each bank",
                                 t.base + t.bank_words, hw.bank_depth, "LOG2_BANK_DEPTH"))
            if isinstance(s, ConvStep):
                need.append((f"output channels of {s.layer.name!r}", s.out_channels, hw.max_n, "LOG2_MAX_N"))
        over = [f"{what} {n} > {have} (build parameter {p})" for what, n, have, p in need if n > have]
        if over:
            raise UnsupportedLayerError("the network does not fit this accelerator build: " + "; ".join(over)
                                        + ". Rebuild the bitstream with larger memories or run it in layer mode")

    # -- the model of the engine ------------------------------------------------------------
    def cycles(self, subnet: int = 0, skip: bool = True) -> list[dict]:
        """Per step: the cycle model (conv: ConvStep.cycles; vector and stream steps: their words)."""
        rows = []
        for s in self.steps:
            if isinstance(s, ConvStep):
                rows.append({"step": s.name, "op": "conv", **s.cycles(subnet, skip)})
            elif isinstance(s, StreamStep):
                rows.append({"step": s.name, "op": s.op, "total": s.beats()})
            else:
                rows.append({"step": s.name, "op": s.op, "total": s.vec_cycles()})
        return rows

    def execute(self, x: np.ndarray, subnet: int = 0, skip: bool = True, bank_depth: int | None = None) -> np.ndarray:
        """Run the packed program in numpy: int16 x (C, H, W) or (B, C, H, W) -> int16 outputs."""
        return execute(self.words(), x, subnet=subnet, skip=skip, lanes=self.lanes, bank_depth=bank_depth)


# -- compiling an artifact ---------------------------------------------------------------------

_GLUE = ("tconv", "add", "shortcut", "relu")


def accelerated_chain(artifact) -> tuple[list, object, object]:
    """(nodes, input node, output node) of the int16 chain from the first quantize to the last
    dequantize; UnsupportedLayerError if anything else is inside it."""
    nodes = artifact.nodes
    q = [i for i, n in enumerate(nodes) if n.op == "quantize"]
    dq = [i for i, n in enumerate(nodes) if n.op == "dequantize"]
    if not q or not dq:
        raise UnsupportedLayerError("the artifact has no quantize ... dequantize chain to accelerate")
    first, last = q[0], dq[-1]
    inside = nodes[first + 1:last]
    bad = [n for n in inside if n.op not in _GLUE]
    if len(q) > 1 or len(dq) > 1 or bad:
        what = ", ".join(f"{n.name!r} ({n.op})" for n in bad) or "several quantize/dequantize nodes"
        raise UnsupportedLayerError(f"network mode runs one int16 chain of {', '.join(_GLUE)}; this one holds {what}: "
                                    f"run it layer by layer (run_layer)")
    return inside, nodes[first], nodes[last]


def compile_network(artifact, hw: HwConfig | None = None, dense: bool = False) -> Program:
    """The network program of ``artifact`` (every sub-net) for an engine with ``hw``'s memories.

    dense: also pack the dense-ternary baseline schedules (MODE.SKIP_EN = 0 runs them)."""
    hw = hw or HwConfig()
    lanes = hw.lanes
    chain, qnode, dqnode = accelerated_chain(artifact)
    k = artifact.num_subnets
    by_name = {n.name: n for n in artifact.nodes}
    shared = {n.name: (n.shared if n.shared is not None else SharedTernaryConv.from_layer(n.layer))
              for n in chain if n.op == "tconv"}
    consumers: dict[str, list[str]] = {}
    for n in artifact.nodes:
        for i in n.inputs:
            consumers.setdefault(i, []).append(n.name)

    # shapes: walk the chain from the input's shape
    shapes = {qnode.name: _input_shape(artifact, qnode)}
    for n in chain:
        c, h, w = shapes[n.inputs[0]]
        if n.op == "tconv":
            layer = shared[n.name]
            ho, wo = layer.subnet(0).out_hw(h, w)
            shapes[n.name] = (layer.codes.shape[0], ho, wo)
        elif n.op == "shortcut":
            s = int(n.attrs["stride"])
            shapes[n.name] = (c + int(n.attrs["pad_before"]) + int(n.attrs["pad_after"]), -(-h // s), -(-w // s))
        else:
            shapes[n.name] = (c, h, w)
    tensors = {name: Tensor(name, *shapes[name], lanes) for name in [qnode.name] + [n.name for n in chain]}

    # fuse: add(conv, r) where the conv feeds only this add
    fused: dict[str, tuple[str, str]] = {}     # add name -> (conv name, residual name)
    for n in chain:
        if n.op != "add":
            continue
        for j in (0, 1):
            src = by_name[n.inputs[j]]
            if src.op == "tconv" and consumers.get(src.name) == [n.name] and n.inputs[1 - j] != src.name:
                fused[n.name] = (src.name, n.inputs[1 - j])
                break

    def build_steps(fused):
        steps: list[Step] = [StreamStep("input", d=tensors[qnode.name], name=qnode.name)]
        in_fused = {c for c, _ in fused.values()}
        for n in chain:
            if n.op == "tconv" and n.name in in_fused:
                continue
            if n.op == "tconv":
                steps.append(_conv(n, tensors[n.inputs[0]], tensors[n.name], None, None))
            elif n.op == "add" and n.name in fused:
                conv_name, res_name = fused[n.name]
                conv = by_name[conv_name]
                la, ra = _shifts(conv.frac, n.frac)
                lb, rb = _shifts(by_name[res_name].frac, n.frac)
                steps.append(_conv(conv, tensors[conv.inputs[0]], tensors[n.name], tensors[res_name],
                                   (la, ra, lb, rb, bool(n.attrs.get("relu"))), name=n.name))
            elif n.op == "add":
                la, ra = _shifts(by_name[n.inputs[0]].frac, n.frac)
                lb, rb = _shifts(by_name[n.inputs[1]].frac, n.frac)
                steps.append(VecStep("add", a=tensors[n.inputs[0]], b=tensors[n.inputs[1]], d=tensors[n.name],
                                     name=n.name, lsh_a=la, rsh_a=ra, lsh_b=lb, rsh_b=rb,
                                     relu=bool(n.attrs.get("relu"))))
            elif n.op == "shortcut":
                steps.append(VecStep("shortcut", a=tensors[n.inputs[0]], d=tensors[n.name], name=n.name,
                                     stride=int(n.attrs["stride"]), pad_before=int(n.attrs["pad_before"])))
            elif n.op == "relu":
                steps.append(VecStep("relu", a=tensors[n.inputs[0]], d=tensors[n.name], name=n.name, relu=True))
        steps.append(StreamStep("output", a=tensors[dqnode.inputs[0]], name=dqnode.name))
        return steps

    def _conv(node, src, dst, res, add, name=None):
        for (lsh, rsh) in ((add[0], add[1]), (add[2], add[3])) if add else ():
            if lsh > LIMITS["LSH"]:
                raise UnsupportedLayerError(f"node {node.name!r}: the residual add rescales by 2**{lsh}; the engine "
                                            f"shifts left by at most {LIMITS['LSH']}")
        if node.layer is not None and node.layer.kernel == (3, 3) and node.layer.padding == 0:
            raise UnsupportedLayerError(f"layer {node.name!r}: network mode runs padded 3x3 convolutions only; "
                                        f"run this network layer by layer")
        return ConvStep("conv", a=src, d=dst, b=res, name=name or node.name, layer=shared[node.name],
                        lanes=lanes, add=add, group_cycles=hw.group_cycles)

    steps = build_steps(fused)
    for s in steps:
        if s.op == "add":
            for key, (l, r) in (("a", (s.lsh_a, s.rsh_a)), ("b", (s.lsh_b, s.rsh_b))):
                if l > LIMITS["LSH"]:
                    raise UnsupportedLayerError(f"node {s.name!r}: the add rescales by 2**{l}; the engine shifts "
                                                f"left by at most {LIMITS['LSH']}")
    _allocate(steps, hw.bank_depth)
    out = tensors[dqnode.inputs[0]]
    prog = Program(steps, lanes, k, dense, tensors[qnode.name], out, names=list(artifact.subnet_names))
    _pack_memories(prog)
    return prog


def _input_shape(artifact, qnode) -> tuple[int, int, int]:
    """The chain input's (C, H, W): trace the host layers before the quantize on a zero image."""
    from ..reference import network
    c, h, w = artifact.input_shape
    view = artifact.subnet(0)
    _, values = network.run(view, np.zeros((1, c, h, w), dtype=np.float32), trace=True, normalized=True)
    return tuple(int(v) for v in values[qnode.name].shape[1:])


def _allocate(steps: list[Step], depth: int) -> None:
    """First-fit addresses over the steps' live ranges; a fused residual that dies at its step is
    overwritten in place (a conv's input and output never share words: the window reads its input
    while the drain writes)."""
    last_use: dict[int, int] = {}
    for i, s in enumerate(steps):
        for t in (s.a, s.b):
            if t is not None:
                last_use[id(t)] = i
    live: list[Tensor] = []

    def place(t: Tensor) -> None:
        spans = sorted((u.base, u.base + u.bank_words) for u in live)
        at = 0
        for lo, hi in spans:
            if at + t.bank_words <= lo:
                break
            at = max(at, hi)
        t.base = at
        live.append(t)

    for i, s in enumerate(steps):
        d = s.d
        if d is not None and d.base < 0:
            res = s.b if isinstance(s, ConvStep) else None
            if res is not None and last_use.get(id(res)) == i and res.bank_words == d.bank_words:
                d.base = res.base
                live.append(d)
            else:
                place(d)
        for t in (s.a, s.b):
            if t is not None and last_use.get(id(t)) == i and t in live:
                live.remove(t)


def _pack_memories(prog: Program) -> None:
    """Codes, program memory (steps, schedules, passes, entries, masks) and parameters."""
    lanes, k = prog.lanes, prog.num_subnets
    codes, params = [], []
    for s in prog.conv_steps:
        s.code_base = len(codes)
        for n, g in s.code_order():
            codes.append(s.codes_hw[n, g])
    prog.codes = np.array(codes, dtype=np.int8).reshape(-1, TAPS, lanes)
    # code words: ceil(18 * lanes / 64) per group, tap t at bits 2 * lanes * t
    enc = encode_codes(prog.codes).astype(np.uint64).reshape(len(codes), TAPS, lanes)
    tap_bits = 2 * lanes
    words = np.zeros((len(codes), code_beats(lanes)), dtype=np.uint64)
    for t in range(TAPS):
        for lane in range(lanes):
            bit = t * tap_bits + 2 * lane
            words[:, bit // 64] |= enc[:, t, lane] << np.uint64(bit % 64)
    prog.code_words = words.reshape(-1)

    mem = [0] * (len(prog.steps) * STEP_WORDS)
    prog.sched_base = len(mem)
    mem += [0] * (len(prog.steps) * k * SCHED_WORDS)
    for i, s in enumerate(prog.steps):
        mem[i * STEP_WORDS:(i + 1) * STEP_WORDS] = s.descriptor()
        if not isinstance(s, ConvStep):
            continue
        for sub in range(k):
            at = prog.sched_base + (i * k + sub) * SCHED_WORDS
            sched = [0] * SCHED_WORDS
            skip = s.schedule(sub, True)
            param_base = len(params)
            params.extend(zip(skip.mult.tolist(), skip.shift.tolist(), skip.bias.tolist()))
            SCHED.pack(sched, PASS_BASE=len(mem), PASS_COUNT=len(skip.passes), PARAM_BASE=param_base,
                       ENTRY_BASE=len(mem) + len(skip.passes))
            mem += _schedule_words(skip, s.a.plane)
            if prog.dense:
                dense = s.schedule(sub, False)
                SCHED.pack(sched, DENSE_BASE=len(mem), DENSE_COUNT=len(dense.passes),
                           DENSE_ENTRY_BASE=len(mem) + len(dense.passes))
                mem += _schedule_words(dense, s.a.plane)
            SCHED.pack(sched, MASK_BASE=len(mem))
            for w in range(math.ceil(s.out_channels / lanes)):
                mem.append(int(sum(1 << j for j in range(lanes)
                                   if w * lanes + j < s.out_channels and skip.active[w * lanes + j])))
            mem[at:at + SCHED_WORDS] = sched
    prog.prog = mem
    prog.params = params


def code_beats(lanes: int) -> int:
    """Stream words per code group: 9 taps x lanes x 2 bits, padded to whole words."""
    return math.ceil(TAPS * 2 * lanes / 64)


def _schedule_words(sch: Schedule, plane: int) -> list[int]:
    words = [PASS.pack(G=g, COUNT=len(e), OFFSET=g * plane)[0] for g, e in sch.passes]
    for _, entries in sch.passes:
        words += [ENTRY.pack(N=n, CODE=c, FIRST=f, NZ=z)[0] for n, c, f, z in entries]
    return words


# -- the interpreter of a packed program ---------------------------------------------------------

def parse(words: np.ndarray, lanes: int = 16) -> dict:
    """Decode a load stream into its memories (the engine's loader, in numpy). ConfigError on a
    malformed program, as the engine answers BAD_PROGRAM."""
    words = [int(v) for v in np.asarray(words, dtype=np.uint64)]
    if not words or HEADER.get(words, "MAGIC") != FORMAT["magic"] or HEADER.get(words, "VERSION") != FORMAT["version"]:
        raise ConfigError("program: bad header (magic or version)")
    if sum(words[:-1]) & ((1 << 64) - 1) != words[-1]:
        raise ConfigError("program: the sum in the end word does not match")
    mem = {"CODE": {}, "PROG": {}, "PARAM": {}}
    i = 1
    while True:
        h = words[i]
        memory = CHUNK.get([h], "MEMORY")
        i += 1
        if memory == MEMORIES["END"]:
            break
        name = {v: k for k, v in MEMORIES.items()}[memory]
        beats = code_beats(lanes) if name == "CODE" else FORMAT["beats_per_entry"][name]
        start, length = CHUNK.get([h], "START"), CHUNK.get([h], "LENGTH")
        for e in range(length):
            mem[name][start + e] = words[i:i + beats]
            i += beats
    if i != len(words) - 1:
        raise ConfigError("program: words after the end chunk")
    prog = {}
    for row, (w,) in mem["PROG"].items():
        prog[2 * row], prog[2 * row + 1] = w & 0xFFFFFFFF, w >> 32
    code = {}
    for a, ws in mem["CODE"].items():
        v = sum(int(x) << (64 * j) for j, x in enumerate(ws))
        raw = np.array([(v >> (2 * j)) & 3 for j in range(TAPS * lanes)], dtype=np.int8).reshape(TAPS, lanes)
        code[a] = np.where(raw == 3, -1, raw).astype(np.int8)
    param = {}
    for a, (b, ms) in mem["PARAM"].items():
        bias = (b & ((1 << 48) - 1)) - ((b >> 47) & 1) * (1 << 48)
        mult = (ms & 0xFFFF) - ((ms >> 15) & 1) * (1 << 16)
        param[a] = (mult, (ms >> 16) & 0x3F, bias)
    return {"steps": HEADER.get(words, "STEPS"), "subnets": HEADER.get(words, "SUBNETS"),
            "dense": HEADER.get(words, "DENSE"), "prog": prog, "code": code, "param": param}


class _Banks:
    """The activation memory: [bank][address] words of ``lanes`` int16."""

    def __init__(self, lanes: int, depth: int):
        self.mem = np.zeros((4, depth, lanes), dtype=np.int16)
        self.lanes = lanes

    def _where(self, t: Tensor, g, y, x):
        yy, xx = y + t.phase, x + t.phase
        bank = (yy % 2) * 2 + (xx % 2)
        return bank, t.base + g * t.plane + (yy >> 1) * t.w2 + (xx >> 1)

    def read(self, t: Tensor) -> np.ndarray:
        g, y, x = np.meshgrid(np.arange(t.groups), np.arange(t.h), np.arange(t.w), indexing="ij")
        bank, addr = self._where(t, g, y, x)
        words = self.mem[bank, addr]                             # (G, H, W, lanes)
        return words.transpose(0, 3, 1, 2).reshape(t.groups * self.lanes, t.h, t.w)

    def write(self, t: Tensor, v: np.ndarray) -> None:
        full = np.zeros((t.groups * self.lanes, t.h, t.w), dtype=np.int16)
        full[:v.shape[0]] = v
        g, y, x = np.meshgrid(np.arange(t.groups), np.arange(t.h), np.arange(t.w), indexing="ij")
        bank, addr = self._where(t, g, y, x)
        self.mem[bank, addr] = full.reshape(t.groups, self.lanes, t.h, t.w).transpose(0, 2, 3, 1)


def execute(words: np.ndarray, x: np.ndarray, subnet: int = 0, skip: bool = True, lanes: int = 16,
            bank_depth: int | None = None) -> np.ndarray:
    """Run a packed program (the load stream) on int16 x: what the engine computes."""
    p = parse(words, lanes)
    if not 0 <= subnet < p["subnets"]:
        raise ConfigError(f"sub-net {subnet} out of range (the program holds {p['subnets']})")
    if not skip and not p["dense"]:
        raise ConfigError("the program has no dense schedules (compile with dense=True)")
    prog, k = p["prog"], p["subnets"]
    rd = lambda a: prog.get(a, 0)  # noqa: E731
    x = np.asarray(x)
    batch = x[None] if x.ndim == 3 else x
    steps = []
    for i in range(p["steps"]):
        steps.append([rd(i * STEP_WORDS + j) for j in range(STEP_WORDS)])
    sched_base = p["steps"] * STEP_WORDS
    outs = []
    for img in batch:
        depth = bank_depth or 1 + max([0] + [tensor_from(s, FORMAT["tensor_at"][key], lanes).base
                                            + tensor_from(s, FORMAT["tensor_at"][key], lanes).bank_words
                                            for s in steps for key in ("A", "D", "B")])
        mem = _Banks(lanes, depth)
        for i, s in enumerate(steps):
            op = {v: k_ for k_, v in OPS.items()}[STEP.get(s, "OP")]
            ta, td, tb = (tensor_from(s, FORMAT["tensor_at"][key], lanes) for key in ("A", "D", "B"))
            if op == "INPUT":
                mem.write(td, img)
            elif op == "OUTPUT":
                outs.append(mem.read(ta)[:STEP.get(s, "N")])
            elif op == "CONV":
                mem.write(td, _conv(s, ta, tb, mem, prog, p, sched_base + (i * k + subnet) * SCHED_WORDS,
                                     skip, lanes))
            elif op == "ADD":
                a, b = mem.read(ta), mem.read(tb)
                mem.write(td, _add(a, b, s))
            elif op == "RELU":
                a = mem.read(ta)
                mem.write(td, np.maximum(a, 0) if STEP.get(s, "RELU") else a)
            elif op == "SHORTCUT":
                a = mem.read(ta)[:STEP.get(s, "C_IN")]
                st, pb = STEP.get(s, "STRIDE"), STEP.get(s, "PAD_BEFORE")
                sub = a[:, ::st, ::st]
                out = np.zeros((td.groups * lanes, td.h, td.w), dtype=np.int16)
                out[pb:pb + sub.shape[0]] = sub
                mem.write(td, out[:STEP.get(s, "N")])
    return np.stack(outs)


def _add(a: np.ndarray, b: np.ndarray, s) -> np.ndarray:
    """numerics.add with the step's shifts (left or right per operand)."""
    def resc(v, lsh, rsh):
        v = np.asarray(v, dtype=np.int64)
        return numerics.round_shift(v, rsh) if rsh else np.left_shift(v, lsh)
    v = resc(a, STEP.get(s, "LSH_A"), STEP.get(s, "RSH_A")) + resc(b, STEP.get(s, "LSH_B"), STEP.get(s, "RSH_B"))
    if STEP.get(s, "ADD_RELU"):
        v = np.maximum(v, 0)
    return numerics.saturate(v)


def _conv(s, ta: Tensor, tb: Tensor, mem: _Banks, prog: dict, p: dict, sched_at: int, skip: bool,
          lanes: int) -> np.ndarray:
    rd = lambda a: prog.get(a, 0)  # noqa: E731
    sched = [rd(sched_at + j) for j in range(SCHED_WORDS)]
    stride, pad, n_out = STEP.get(s, "STRIDE"), STEP.get(s, "PAD"), STEP.get(s, "N")
    base, count, entry = ((SCHED.get(sched, "PASS_BASE"), SCHED.get(sched, "PASS_COUNT"),
                           SCHED.get(sched, "ENTRY_BASE")) if skip else
                          (SCHED.get(sched, "DENSE_BASE"), SCHED.get(sched, "DENSE_COUNT"),
                           SCHED.get(sched, "DENSE_ENTRY_BASE")))
    x = mem.read(ta)                                            # (G*lanes, H, W)
    h, w = ta.h, ta.w
    ho, wo = (h + 2 * pad - 3) // stride + 1, (w + 2 * pad - 3) // stride + 1
    xp = np.pad(x.astype(np.int64), ((0, 0), (pad, pad), (pad, pad)))
    acc = np.full((n_out, ho, wo), np.iinfo(np.int64).min, dtype=np.int64)
    for pi in range(count):
        pw = rd(base + pi)
        g, cnt = PASS.get([pw], "G"), PASS.get([pw], "COUNT")
        if PASS.get([pw], "OFFSET") != g * ta.plane:
            raise ConfigError(f"program: pass {pi} of a conv has offset {PASS.get([pw], 'OFFSET')}, not g*plane")
        # (ho, wo, 9, lanes): the window of group g at every output pixel
        patches = np.stack([xp[g * lanes:(g + 1) * lanes, ky:ky + stride * (ho - 1) + 1:stride,
                               kx:kx + stride * (wo - 1) + 1:stride]
                            for ky in range(3) for kx in range(3)]).transpose(2, 3, 0, 1)
        for e in range(cnt):
            ew = rd(entry + e)
            n, code = ENTRY.get([ew], "N"), ENTRY.get([ew], "CODE")
            codes = p["code"][code] if ENTRY.get([ew], "NZ") else np.zeros((TAPS, lanes), dtype=np.int8)
            contrib = np.einsum("hwtl,tl->hw", patches, codes.astype(np.int64))
            acc[n] = contrib if ENTRY.get([ew], "FIRST") else acc[n] + contrib
        entry += cnt
    params = [p["param"][SCHED.get(sched, "PARAM_BASE") + n] for n in range(n_out)]
    mult, shift, bias = (np.array(v, dtype=np.int64) for v in zip(*params))
    if skip:
        mask = np.array([(rd(SCHED.get(sched, "MASK_BASE") + n // lanes) >> (n % lanes)) & 1
                         for n in range(n_out)], dtype=bool)
    else:
        mask = np.ones(n_out, dtype=bool)
    started = acc[:, 0, 0] != np.iinfo(np.int64).min
    if (mask & ~started).any() or (started & ~mask).any():
        raise ConfigError("program: a conv's word-group masks disagree with its issue list")
    acc[~mask] = 0
    y = numerics.output_stage(acc, mult, shift, bias, bool(STEP.get(s, "RELU")))
    if STEP.get(s, "RES"):
        y = _add(y, mem.read(tb)[:n_out], s)
    return y
