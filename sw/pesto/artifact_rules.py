"""The artifact format's rules, checked on the manifest before any array is read.

docs/format.md ("Rules") states each rule; this module is their one implementation.
``check_manifest`` takes the parsed JSON and proves, with arithmetic alone, that the file is
well formed and that loading and running it stays within bounds:

* JSON value types (``false`` is not 0, ``meta`` is an object, no NaN, no duplicate keys);
* the blob table (8-byte aligned, contiguous, no overlap, every byte accounted for, every
  blob used exactly once, its dtype and shape given by its role);
* every node (op, inputs, fraction bits, attrs of the right type and range);
* the shapes through the graph, from the input to the output's class count;
* bounds: the memory the loader allocates is bounded by the file's size
  (``LOAD_BASE + LOAD_PER_BYTE * file size`` unpacked codes over all layers), and the work
  of one image by ``MAX_ACTIVATIONS`` and ``MAX_MACS``.

``lint`` then flags values that are legal but certainly wrong (an output stage that makes a
layer ignore its input, a normalisation that blows pixels up, an all-zero host layer);
``python -m pesto.artifact`` exits non-zero on them.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

import numpy as np

from . import geometry, numerics
from .errors import ArtifactError
from .ir import SUPPORTED_KERNELS, SUPPORTED_STRIDES

# -- the format's limits (docs/format.md) -------------------------------------------------------
MAX_FILE_BYTES = 1 << 31          # 2 GiB: an AlexNet with float host layers is ~250 MB
MAX_MANIFEST_BYTES = 64 << 20
MAX_NODES = 10_000
MAX_DIM = 1 << 16                 # any channel count, height, width, feature or class count
MAX_SUBNETS = 16
LOAD_BASE = 1 << 27               # unpacked codes (N * padded C * Kh * Kw, times the sub-nets) ...
LOAD_PER_BYTE = 64                # ... may exceed this many per byte of the file only by LOAD_BASE
MAX_ACTIVATIONS = 1 << 28         # elements of all node outputs (and padded inputs) for one image
MAX_MACS = 1 << 36                # multiply-accumulates (or adds) of one image
ALIGN = 8

NAME = re.compile(r"[A-Za-z0-9_.:\-]{1,200}")
BLOB_NAME = re.compile(r"[A-Za-z0-9_.:/\-]{1,300}")
DTYPES = {"<f4": 4, "<i2": 2, "|u1": 1, "<i8": 8, "|i1": 1}

# The numerics contract a file must have been written under (meta.numerics, when present).
NUMERICS = {"act_bits": numerics.ACT_BITS, "acc_bits": numerics.ACC_BITS, "mult_bits": numerics.MULT_BITS,
            "shift_max": numerics.SHIFT_MAX, "bias_bits": numerics.BIAS_BITS,
            "rounding": "round half up", "saturation": "int16"}


# -- JSON -------------------------------------------------------------------------------------

def parse_json(raw: bytes) -> dict:
    """The manifest as JSON, refusing what JSON itself does not allow (NaN, Infinity), non-finite
    numbers, duplicate keys and text that is not UTF-8."""
    def constant(name):
        raise ArtifactError(f"manifest holds {name}, which is not JSON")

    def number(text):
        v = float(text)
        if not math.isfinite(v):
            raise ArtifactError(f"manifest holds the number {text[:40]}, which is not finite")
        return v

    def pairs(items):
        d = {}
        for k, v in items:
            if k in d:
                raise ArtifactError(f"manifest: key {k!r} appears twice in one object")
            d[k] = v
        return d

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ArtifactError(f"manifest is not UTF-8 ({e})") from None
    try:
        m = json.loads(text, parse_constant=constant, parse_float=number, object_pairs_hook=pairs)
    except json.JSONDecodeError as e:
        raise ArtifactError(f"manifest is not JSON ({e})") from None
    except (RecursionError, ValueError) as e:   # absurd nesting; ints of > 4300 digits
        raise ArtifactError(f"manifest is not valid JSON ({type(e).__name__}: {str(e)[:100]})") from None
    return _obj(m, "manifest", strict=False)


def _show(v) -> str:
    try:
        s = json.dumps(v)
    except (TypeError, ValueError):
        s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _int(v, where: str, lo: int | None = None, hi: int | None = None) -> int:
    if type(v) is not int:
        raise ArtifactError(f"{where} must be an integer, got {_show(v)}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = f"{lo if lo is not None else '-inf'}..{hi if hi is not None else 'inf'}"
        raise ArtifactError(f"{where} = {v} is out of range {rng}")
    return v


def _num(v, where: str) -> float:
    if type(v) not in (int, float) or not math.isfinite(v):
        raise ArtifactError(f"{where} must be a finite number, got {_show(v)}")
    return float(v)


def _bool(v, where: str) -> bool:
    if type(v) is not bool:
        raise ArtifactError(f"{where} must be true or false, got {_show(v)}")
    return v


def _str(v, where: str, pattern: re.Pattern | None = None) -> str:
    if type(v) is not str:
        raise ArtifactError(f"{where} must be a string, got {_show(v)}")
    if pattern is not None and not pattern.fullmatch(v):
        raise ArtifactError(f"{where} {_show(v)} must match {pattern.pattern}")
    return v


def _list(v, where: str, length: int | None = None, max_len: int | None = None) -> list:
    if type(v) is not list:
        raise ArtifactError(f"{where} must be a list, got {_show(v)}")
    if length is not None and len(v) != length:
        raise ArtifactError(f"{where} must have {length} entries, got {len(v)}")
    if max_len is not None and len(v) > max_len:
        raise ArtifactError(f"{where} has {len(v)} entries, at most {max_len} are allowed")
    return v


def _obj(v, where: str, required=(), optional=(), strict: bool = True) -> dict:
    if type(v) is not dict:
        raise ArtifactError(f"{where} must be an object, got {_show(v)}")
    missing = [k for k in required if k not in v]
    if missing:
        raise ArtifactError(f"{where} lacks {', '.join(map(repr, missing))}")
    if strict:
        unknown = [k for k in v if k not in required and k not in optional]
        if unknown:
            raise ArtifactError(f"{where} has unknown field(s) {', '.join(map(repr, unknown))}; known: "
                                f"{', '.join(map(repr, [*required, *optional]))}")
    return v


def _shape(v, where: str, rank: int | None = None, lo: int = 1) -> tuple[int, ...]:
    v = _list(v, where, rank, max_len=8)
    return tuple(_int(d, f"{where}[{i}]", lo, MAX_DIM) for i, d in enumerate(v))


def _opt_int(lo=None, hi=None):
    def check(v, where):
        return None if v is None else _int(v, where, lo, hi)
    return check


def _int_attr(lo=None, hi=None):
    return lambda v, where: _int(v, where, lo, hi)


def _alpha(v, where):   # informational: the float layer scale (a list of them after merge_subnets)
    if isinstance(v, list):
        for i, a in enumerate(_list(v, where, max_len=MAX_SUBNETS)):
            if a is not None:
                _num(a, f"{where}[{i}]")
    elif v is not None:
        _num(v, where)


# -- per-op rules: attrs {key: (check, required)} and blob roles {role: (dtype, required)} ------

_FRAC = _int_attr(numerics.FRAC_MIN, numerics.FRAC_MAX)
_RELU = (_bool, False)
ATTRS = {
    "input": {"shape": (lambda v, w: _shape(v, w, 3), True)},
    "conv": {"stride": (_int_attr(1, MAX_DIM), True), "padding": (_int_attr(0, MAX_DIM), True), "relu": _RELU},
    "linear": {"relu": _RELU},
    "quantize": {},
    "dequantize": {},
    "tconv": {"shape": (lambda v, w: _shape(v, w, 4), True), "cg": (_int_attr(1, MAX_DIM), True),
              "stride": (_int_attr(min(SUPPORTED_STRIDES), max(SUPPORTED_STRIDES)), True),
              "padding": (_int_attr(0, max(max(k) for k in SUPPORTED_KERNELS) // 2), True), "relu": _RELU,
              "f_in": (_FRAC, True), "f_out": (_FRAC, True), "groups": (_int_attr(1, MAX_DIM), True),
              "nnz_groups": (_int_attr(0, None), True), "alpha": (_alpha, False),
              "acc_bound_bits": (_int_attr(1, 64), False)},
    "add": {"relu": _RELU},
    "shortcut": {"stride": (_int_attr(1, MAX_DIM), True), "pad_before": (_int_attr(0, MAX_DIM), True),
                 "pad_after": (_int_attr(0, MAX_DIM), True)},
    "maxpool": {"kernel": (_int_attr(1, MAX_DIM), True), "stride": (_int_attr(1, MAX_DIM), True),
                "padding": (_int_attr(0, MAX_DIM), True)},
    "avgpool": {"kernel": (_opt_int(1, MAX_DIM), True), "stride": (_opt_int(1, MAX_DIM), True),
                "output_size": (lambda v, w: _shape(v, w, 2), False)},
    "relu": {},
    "flatten": {},
}
INPUTS = {"input": 0, "add": 2}                     # every other op takes one input
HOST_ROLES = {"weight": ("<f4", True), "bias": ("<f4", False)}
ROLES = {"conv": HOST_ROLES, "linear": HOST_ROLES,
         "tconv": {"indexer": ("|u1", True), "codes": ("|u1", True), "mult": ("<i2", True),
                   "shift": ("|u1", True), "bias": ("<i8", True)}}
SHARED_ROLES = ("indexer", "codes")                 # a tconv of a multi-sub-net artifact ...
STAGE_ROLES = {"issue": "|u1", "mult": "<i2", "shift": "|u1", "bias": "<i8"}   # ... and per sub-net


@dataclass
class BlobSpec:
    name: str
    offset: int
    nbytes: int
    dtype: str
    shape: tuple[int, ...]
    role: str = ""
    node: str = ""


@dataclass
class Plan:
    """What the manifest checks established: the blob table, the per-image output shape of
    every node and the bounds that were checked."""

    blobs: dict[str, BlobSpec]
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    load_codes: int = 0          # unpacked codes the loader will allocate (times the sub-nets)
    activations: int = 0         # elements per image
    macs: int = 0                # per image


def check_manifest(m: dict, version: tuple[int, int], reader_minor: int, blob_bytes: int,
                   file_bytes: int) -> Plan:
    """Every rule of docs/format.md that needs no array data; ArtifactError on the first broken one.

    ``version``: the file's (major, minor) from its header; fields unknown to this reader are
    refused unless the file's minor is newer than ``reader_minor`` (minors only add fields).
    """
    strict = version[1] <= reader_minor
    top = ("format", "format_version", "meta", "output", "nodes", "blobs")
    _obj(m, "manifest", top, ("subnets",), strict)
    if m["format"] != "pesto-artifact":
        raise ArtifactError(f"manifest format is {_show(m['format'])}, not \"pesto-artifact\"")
    fv = _list(m["format_version"], "format_version", 2)
    if [_int(v, "format_version") for v in fv] != list(version):
        raise ArtifactError(f"manifest says format {fv}, the header {list(version)}")
    k = _check_subnets(m, version)
    meta = _check_meta(m["meta"], strict)
    blobs = _check_blob_table(m["blobs"], blob_bytes)
    nodes = _list(m["nodes"], "nodes", max_len=MAX_NODES)
    if not nodes:
        raise ArtifactError("the graph has no nodes")
    plan = Plan(blobs)
    used: dict[str, str] = {}
    seen: dict[str, dict] = {}
    for i, node in enumerate(nodes):
        name = _check_node(node, i, k, strict, seen)
        for role, blob in _node_blob_refs(node):
            where = f"node {name!r} blob {role!r}"
            _str(blob, where)
            if blob not in blobs:
                raise ArtifactError(f"{where} names {blob!r}, which the blob table does not hold")
            if blob in used:
                raise ArtifactError(f"blob {blob!r} is used twice (by {used[blob]} and {where}); every blob "
                                    f"belongs to one node")
            used[blob] = where
            blobs[blob].role, blobs[blob].node = role, name
        seen[name] = node
    unused = [b for b in blobs if b not in used]
    if unused:
        raise ArtifactError(f"blob(s) {', '.join(map(repr, unused[:5]))} belong to no node")
    output = _str(m["output"], "output", NAME)
    if output not in seen:
        raise ArtifactError(f"output node {output!r} is not in the graph")
    _propagate(nodes, meta, k, output, plan)
    _check_work(plan, file_bytes)
    return plan


def _check_subnets(m: dict, version) -> int:
    if "subnets" not in m:
        return 0
    if version < (1, 1):
        raise ArtifactError(f"sub-nets need format 1.1, the file is {version[0]}.{version[1]}")
    subs = _list(m["subnets"], "subnets", max_len=MAX_SUBNETS)
    if len(subs) < 2:
        raise ArtifactError(f"{len(subs)} sub-nets listed; an artifact lists none or 2..{MAX_SUBNETS}")
    for i, s in enumerate(subs):
        _obj(s, f"subnets[{i}]", ("name", "meta"))
        _str(s["name"], f"subnets[{i}].name")
        if type(s["meta"]) is not dict:
            raise ArtifactError(f"sub-net {s['name']!r}: meta must be an object, got {_show(s['meta'])}")
    return len(subs)


def _check_meta(meta, strict: bool) -> dict:
    _obj(meta, "meta", ("num_classes", "input"), strict=False)   # meta is free-form beyond these
    _int(meta["num_classes"], "meta.num_classes", 1, MAX_DIM)
    inp = _obj(meta["input"], "meta.input", ("shape", "mean", "std"), ("layout", "normalisation"), strict)
    c = _shape(inp["shape"], "meta.input.shape", 3)[0]
    if "layout" in inp and inp["layout"] != "NCHW":
        raise ArtifactError(f"meta.input.layout is {_show(inp['layout'])}; pesto artifacts are \"NCHW\"")
    if "normalisation" in inp:
        _str(inp["normalisation"], "meta.input.normalisation")
    for key in ("mean", "std"):
        values = [_num(v, f"meta.input.{key}[{i}]") for i, v in enumerate(_list(inp[key], f"meta.input.{key}", c))]
        if key == "std" and min(values) <= 0:
            raise ArtifactError(f"meta.input.std {values} must be > 0 in every channel (x = (pixel / 255 - mean) / std)")
    for key in ("model", "export", "subnet"):
        if key in meta and type(meta[key]) is not dict:
            raise ArtifactError(f"meta.{key} must be an object, got {_show(meta[key])}")
    if "numerics" in meta:
        nm = _obj(meta["numerics"], "meta.numerics", strict=False)
        wrong = {k: nm[k] for k in NUMERICS if k in nm and nm[k] != NUMERICS[k]}
        if wrong:
            raise ArtifactError(f"meta.numerics {wrong} differ from this pesto's contract {NUMERICS} "
                                f"(docs/numerics.md); the file was written for other numerics")
    return meta


def _check_blob_table(table, blob_bytes: int) -> dict[str, BlobSpec]:
    _obj(table, "blobs", strict=False)
    specs = {}
    for name, spec in table.items():
        where = f"blob {name!r}"
        _str(name, where, BLOB_NAME)
        _obj(spec, where, ("offset", "nbytes", "dtype", "shape"))
        dtype = _str(spec["dtype"], f"{where} dtype")
        if dtype not in DTYPES:
            raise ArtifactError(f"{where}: unsupported dtype {dtype!r}; the format stores {', '.join(DTYPES)}")
        shape = _shape(spec["shape"], f"{where} shape", lo=0)
        off = _int(spec["offset"], f"{where} offset", 0, blob_bytes)
        nbytes = _int(spec["nbytes"], f"{where} nbytes", 0, blob_bytes)
        if off % ALIGN:
            raise ArtifactError(f"{where}: offset {off} is not a multiple of {ALIGN}")
        if nbytes != math.prod(shape) * DTYPES[dtype]:
            raise ArtifactError(f"{where}: {nbytes} bytes do not hold shape {list(shape)} of {dtype}")
        if off + nbytes > blob_bytes:
            raise ArtifactError(f"{where} lies outside the blob section ({off}+{nbytes} > {blob_bytes})")
        specs[name] = BlobSpec(name, off, nbytes, dtype, shape)
    pos = 0
    for s in sorted(specs.values(), key=lambda s: (s.offset, s.nbytes)):
        if s.offset != pos:
            what = "overlaps the blob before it" if s.offset < pos else f"leaves {s.offset - pos} unaccounted bytes before it"
            raise ArtifactError(f"blob {s.name!r} at offset {s.offset} {what}; blobs are stored back to back, "
                                f"each padded to {ALIGN} bytes")
        pos = s.offset + s.nbytes + (-s.nbytes) % ALIGN
    if pos != blob_bytes:
        raise ArtifactError(f"the blob section has {blob_bytes} bytes, its blobs account for {pos}")
    return specs


def _check_node(node, i: int, k: int, strict: bool, seen: dict) -> str:
    where = f"nodes[{i}]"
    _obj(node, where, ("name", "op", "inputs", "frac", "attrs", "blobs"), ("subnet_blobs",), strict)
    name = _str(node["name"], f"{where}.name", NAME)
    where = f"node {name!r}"
    if name in seen:
        raise ArtifactError(f"{where}: duplicate node name")
    op = _str(node["op"], f"{where} op")
    if op not in ATTRS:
        raise ArtifactError(f"{where}: unknown op {op!r}; known ops: {', '.join(ATTRS)}")
    where = f"node {name!r} ({op})"
    if (op == "input") != (i == 0):
        raise ArtifactError(f"{where}: a graph starts with its one input node, and has no other")
    inputs = _list(node["inputs"], f"{where} inputs")
    if len(inputs) != INPUTS.get(op, 1):
        raise ArtifactError(f"{where}: takes {INPUTS.get(op, 1)} input(s), got {len(inputs)}")
    for j, src in enumerate(inputs):
        _str(src, f"{where} inputs[{j}]")
        if src not in seen:
            raise ArtifactError(f"{where}: input {src!r} is not defined before it")
    if node["frac"] is not None:
        _FRAC(node["frac"], f"{where} frac")
    attrs = _obj(node["attrs"], f"{where} attrs", [a for a, (_, req) in ATTRS[op].items() if req],
                 [a for a, (_, req) in ATTRS[op].items() if not req], strict)
    for key, value in attrs.items():
        if key in ATTRS[op]:
            ATTRS[op][key][0](value, f"{where} attr {key!r}")
    roles = ROLES.get(op, {})
    blobs = _obj(node["blobs"], f"{where} blobs", strict=False)
    per = node.get("subnet_blobs")
    if op == "tconv" and k:
        _obj(blobs, f"{where} blobs", SHARED_ROLES)
        if per is None:
            raise ArtifactError(f"{where}: a layer of a {k}-sub-net artifact needs subnet_blobs (its per-sub-net "
                                f"issue maps and output stages)")
    if per is not None:
        if not k or not roles:
            raise ArtifactError(f"{where}: per-sub-net blob sets need a host or tconv node of an artifact with "
                                f"sub-nets (this one lists {k})")
        _list(per, f"{where} subnet_blobs", max_len=MAX_SUBNETS)
        if len(per) != k:
            raise ArtifactError(f"node {name!r}: {len(per)} per-sub-net blob sets for {k} sub-nets")
        for j, sb in enumerate(per):
            _obj(sb, f"{where} subnet_blobs[{j}]", strict=False)
            if op == "tconv" and set(sb) != set(STAGE_ROLES):
                raise ArtifactError(f"layer {name!r}: sub-net {j} stores {sorted(sb)}, expected {list(STAGE_ROLES)}")
            if op != "tconv" and (set(sb) != set(per[0]) or not sb or set(sb) - set(roles) or set(sb) & set(blobs)):
                raise ArtifactError(f"{where}: sub-net {j} stores {sorted(sb)}, expected the same roles of "
                                    f"{sorted(roles)} in every sub-net and none of the shared ones {sorted(blobs)}")
        if op != "tconv" and set(blobs) - set(roles):
            raise ArtifactError(f"{where}: unknown blob role(s) {sorted(set(blobs) - set(roles))}; known: {sorted(roles)}")
    else:
        want = {r for r, (_, req) in roles.items() if req}
        _obj(blobs, f"{where} blobs", tuple(want), tuple(r for r in roles if r not in want), strict=True)
    if op != "tconv" and per is not None:
        have = set(blobs) | set(per[0])
        missing = [r for r, (_, req) in roles.items() if req and r not in have]
        if missing:
            raise ArtifactError(f"{where} lacks blob(s) {missing}")
    return name


def _node_blob_refs(node) -> list[tuple[str, str]]:
    refs = list(node["blobs"].items())
    for sb in node.get("subnet_blobs") or []:
        refs += list(sb.items())
    return refs


# -- shapes through the graph ---------------------------------------------------------------------

def _spec(plan: Plan, blob: str, where: str, dtype: str, shape: tuple) -> None:
    s = plan.blobs[blob]
    if s.dtype != dtype:
        raise ArtifactError(f"{where}: blob {blob!r} is {s.dtype}, the role needs {dtype}")
    if tuple(s.shape) != tuple(shape):
        raise ArtifactError(f"{where}: blob {blob!r} has shape {list(s.shape)}, expected {list(shape)}")


def _all_blobs(node) -> list[dict]:
    """The role -> blob maps of a node: its shared blobs, then one per sub-net."""
    return [node["blobs"]] + list(node.get("subnet_blobs") or [])


def _host_param(plan: Plan, node, where: str, role: str) -> tuple | None:
    for blobs in _all_blobs(node):
        if role in blobs:
            s = plan.blobs[blobs[role]]
            if s.dtype != HOST_ROLES[role][0]:
                raise ArtifactError(f"{where}: blob {s.name!r} ({role}) is {s.dtype}, the role needs <f4")
            return s.shape
    return None


def _same_host_shapes(plan: Plan, node, where: str) -> None:
    for sb in node.get("subnet_blobs") or []:
        for role, blob in sb.items():
            first, s = plan.blobs[node["subnet_blobs"][0][role]], plan.blobs[blob]
            if s.shape != first.shape or s.dtype != HOST_ROLES[role][0]:
                raise ArtifactError(f"{where}: sub-net array {blob!r} ({role}) is {s.dtype} {list(s.shape)}, "
                                    f"expected {HOST_ROLES[role][0]} {list(first.shape)} like sub-net 0's")


def _out(size: int, k: int, s: int, p: int, where: str, what: str) -> int:
    o = (size + 2 * p - k) // s + 1
    if size + 2 * p < k or o < 1:
        raise ArtifactError(f"{where}: {what} {k} with padding {p} does not fit the {size}-pixel input")
    return o


def _propagate(nodes: list, meta: dict, k: int, output: str, plan: Plan) -> None:
    shapes = plan.shapes
    frac: dict[str, int | None] = {}
    users = {n["name"]: 0 for n in nodes}
    for node in nodes:
        name, op, a = node["name"], node["op"], node["attrs"]
        where = f"node {name!r} ({op})"
        ins = [shapes[i] for i in node["inputs"]]
        for i in node["inputs"]:
            users[i] += 1
        x = ins[0] if ins else None
        if op in ("conv", "tconv", "shortcut", "maxpool", "avgpool") and len(x) != 3:
            raise ArtifactError(f"{where}: needs a (C, H, W) input, {node['inputs'][0]!r} gives {list(x)}")
        if op == "input":
            shape = tuple(a["shape"])
            if shape != tuple(meta["input"]["shape"]):
                raise ArtifactError(f"{where}: shape {list(shape)} differs from meta.input.shape "
                                    f"{meta['input']['shape']}")
        elif op == "conv":
            w = _host_param(plan, node, where, "weight")
            if w is None or len(w) != 4 or w[1] != x[0] or min(w) < 1:
                raise ArtifactError(f"{where}: weight must be (N, {x[0]}, Kh, Kw) for its {x[0]}-channel input, "
                                    f"got {list(w) if w else None}")
            b = _host_param(plan, node, where, "bias")
            if b is not None and tuple(b) != (w[0],):
                raise ArtifactError(f"{where}: bias must be ({w[0]},), got {list(b)}")
            s, p = a["stride"], a["padding"]
            shape = (w[0], _out(x[1], w[2], s, p, where, "kernel"), _out(x[2], w[3], s, p, where, "kernel"))
            plan.activations += x[0] * (x[1] + 2 * p) * (x[2] + 2 * p)
            plan.macs += math.prod(w) * shape[1] * shape[2]
            _same_host_shapes(plan, node, where)
        elif op == "linear":
            w = _host_param(plan, node, where, "weight")
            if len(x) != 1 or w is None or len(w) != 2 or w[1] != x[0] or w[0] < 1:
                raise ArtifactError(f"{where}: needs a flat (features,) input and a (N, features) weight; input "
                                    f"{list(x)}, weight {list(w) if w else None} (insert a flatten node)")
            b = _host_param(plan, node, where, "bias")
            if b is not None and tuple(b) != (w[0],):
                raise ArtifactError(f"{where}: bias must be ({w[0]},), got {list(b)}")
            shape = (w[0],)
            plan.macs += w[0] * w[1]
            _same_host_shapes(plan, node, where)
        elif op == "tconv":
            shape = _tconv(node, x, k, plan, where)
        elif op == "add":
            if ins[0] != ins[1]:
                raise ArtifactError(f"{where}: adds {list(ins[0])} and {list(ins[1])}; the shapes must agree")
            shape = x
        elif op == "shortcut":
            s = a["stride"]
            shape = (a["pad_before"] + x[0] + a["pad_after"], -(-x[1] // s), -(-x[2] // s))
            if shape[0] > MAX_DIM:
                raise ArtifactError(f"{where}: {shape[0]} channels exceed the format's {MAX_DIM}")
        elif op == "maxpool":
            kk, s, p = a["kernel"], a["stride"], a["padding"]
            if p > kk // 2:
                raise ArtifactError(f"{where}: padding {p} exceeds half the kernel {kk} (PyTorch's rule)")
            shape = (x[0], _out(x[1], kk, s, p, where, "kernel"), _out(x[2], kk, s, p, where, "kernel"))
            plan.activations += x[0] * (x[1] + 2 * p) * (x[2] + 2 * p)
            plan.macs += math.prod(shape) * kk * kk
        elif op == "avgpool":
            shape = _avgpool(a, x, where)
            plan.macs += math.prod(x)
        elif op == "flatten":
            shape = (math.prod(x),)
        else:   # quantize, dequantize, relu
            shape = x
        _domain(node, frac, where)
        shapes[name] = tuple(shape)
        plan.activations += math.prod(shape)
    out = shapes[output]
    want = (meta["num_classes"],)
    if tuple(out) != want:
        raise ArtifactError(f"output node {output!r} gives {list(out)} per image; the artifact's "
                            f"{meta['num_classes']} classes need {list(want)}")
    dead = [n["name"] for n in nodes if users[n["name"]] == 0 and n["name"] != output]
    if dead:
        raise ArtifactError(f"node(s) {', '.join(map(repr, dead[:5]))} feed nothing and are not the output")


# op -> (the domain it needs of its inputs, the domain of its output); "same": its first input's
DOMAINS = {"input": (None, "float"), "conv": ("float", "float"), "linear": ("float", "float"),
           "quantize": ("float", "int"), "dequantize": ("int", "float"), "tconv": ("int", "int"),
           "add": (None, "same"), "shortcut": (None, "same"), "maxpool": (None, "same"),
           "avgpool": ("float", "float"), "relu": (None, "same"), "flatten": ("float", "float")}


def _domain(node, frac: dict, where: str) -> None:
    """int16 (a frac) or float32 (no frac) in and out, as docs/format.md's ops table says."""
    op, f = node["op"], node["frac"]
    ins = [frac[i] for i in node["inputs"]]
    needs, gives = DOMAINS[op]
    for i, fi in zip(node["inputs"], ins):
        if needs and (fi is None) != (needs == "float"):
            raise ArtifactError(f"{where}: needs a {'float32' if needs == 'float' else 'int16'} input, "
                                f"{i!r} is {'float32' if fi is None else 'int16'}")
    if op == "add" and (ins[0] is None) != (ins[1] is None):
        raise ArtifactError(f"{where}: both inputs must be int16 or both float32")
    if gives == "same":
        gives = "int" if ins[0] is not None else "float"
    if (f is None) != (gives == "float"):
        raise ArtifactError(f"{where}: output domain is {gives} but frac is {_show(f)}")
    if op in ("shortcut", "maxpool", "relu") and f != ins[0]:
        raise ArtifactError(f"{where}: keeps its input's format {ins[0]}, not {f}")
    if op == "tconv" and (node["attrs"]["f_in"], node["attrs"]["f_out"]) != (ins[0], f):
        raise ArtifactError(f"{where}: f_in/f_out {node['attrs']['f_in']}/{node['attrs']['f_out']} disagree with "
                            f"the graph's formats {ins[0]}/{f}")
    frac[node["name"]] = f


def _tconv(node, x, k: int, plan: Plan, where: str) -> tuple:
    a = node["attrs"]
    n, c, kh, kw = a["shape"]
    cg = a["cg"]
    if c != x[0]:
        raise ArtifactError(f"{where}: weight shape {a['shape']} takes {c} channels, its input has {x[0]}")
    if (kh, kw) not in SUPPORTED_KERNELS:
        raise ArtifactError(f"{where}: kernel {kh}x{kw} is not one the engine runs {SUPPORTED_KERNELS}")
    if a["padding"] > max(kh, kw) // 2:
        raise ArtifactError(f"{where}: padding {a['padding']} unsupported for kernel {kh}x{kw}")
    if c * kh * kw > numerics.MAX_FAN_IN:
        raise ArtifactError(f"{where}: fan-in {c * kh * kw} exceeds {numerics.MAX_FAN_IN}: the 32-bit "
                            f"accumulator could overflow")
    g = geometry.num_groups(c, cg)
    if a["groups"] != g:
        raise ArtifactError(f"{where}: groups {a['groups']} != ceil({c} / {cg}) = {g}")
    if a["nnz_groups"] > n * g:
        raise ArtifactError(f"{where}: {a['nnz_groups']} non-zero groups of only {n * g}")
    shared = node["blobs"]
    _spec(plan, shared["indexer"], where, "|u1", (math.ceil(n * g / 8),))
    _spec(plan, shared["codes"], where, "|u1", (math.ceil(a["nnz_groups"] * cg * kh * kw / 4),))
    for stage in ([shared] if not k else node["subnet_blobs"]):
        if k:
            _spec(plan, stage["issue"], where, "|u1", (math.ceil(n * g / 8),))
        for role in ("mult", "shift", "bias"):
            _spec(plan, stage[role], where, STAGE_ROLES[role], (n,))
    s, p = a["stride"], a["padding"]
    shape = (n, _out(x[1], kh, s, p, where, "kernel"), _out(x[2], kw, s, p, where, "kernel"))
    plan.load_codes += n * g * cg * kh * kw * (1 + k if k else 1)
    plan.activations += c * (x[1] + 2 * p) * (x[2] + 2 * p)
    plan.macs += n * c * kh * kw * shape[1] * shape[2]
    return shape


def _avgpool(a: dict, x: tuple, where: str) -> tuple:
    kk, s = a["kernel"], a["stride"]
    if "output_size" in a:
        if kk is not None or s is not None:
            raise ArtifactError(f"{where}: output_size (adaptive pooling) goes with kernel and stride null")
        return (x[0], *a["output_size"])
    if kk is None:
        if s is not None:
            raise ArtifactError(f"{where}: global pooling (kernel null) takes no stride")
        return (x[0], 1, 1)
    s = s or kk
    return (x[0], _out(x[1], kk, s, 0, where, "kernel"), _out(x[2], kk, s, 0, where, "kernel"))


def _check_work(plan: Plan, file_bytes: int) -> None:
    budget = LOAD_BASE + LOAD_PER_BYTE * file_bytes
    if plan.load_codes > budget:
        raise ArtifactError(f"the accelerated layers declare {plan.load_codes:,} codes (times the sub-nets), more "
                            f"than a {file_bytes:,}-byte file may ({budget:,} = {LOAD_BASE:,} + {LOAD_PER_BYTE} per "
                            f"byte): refused before allocating them")
    if plan.activations > MAX_ACTIVATIONS:
        raise ArtifactError(f"the graph's activations take {plan.activations:,} values per image, more than the "
                            f"format's limit {MAX_ACTIVATIONS:,}")
    if plan.macs > MAX_MACS:
        raise ArtifactError(f"the graph needs {plan.macs:,} operations per image, more than the format's limit "
                            f"{MAX_MACS:,}")


# -- the float path cannot overflow ---------------------------------------------------------------

FLOAT_LIMIT = 1e38   # below float32's largest value (3.4e38), with room for rounding


def check_float_range(art) -> None:
    """Prove that no float32 value of the graph can overflow, as the accumulator bound proves it
    for the int32 path: a bound on |x| is carried from the normalised input (pixels in [0, 1])
    through every host layer (row sums of |weight| times the input bound, plus |bias|), and an
    int16 tensor's bound is 2^15 * 2^-frac. ``art`` is an Artifact; every sub-net is checked."""
    for k in range(art.num_subnets):
        view = art.subnet(k)
        mean, std = view.mean.astype(np.float64), view.std.astype(np.float64)
        bound: dict[str, float] = {}
        for node in view.nodes:
            ins = [bound[i] for i in node.inputs]
            if node.frac is not None:            # int16 at 2^-frac
                b = 32768.0 * 2.0 ** -node.frac
            elif node.op == "input":
                b = float(np.max(np.maximum(np.abs(mean), np.abs(1 - mean)) / std))
            elif node.op in ("conv", "linear"):
                w = np.abs(node.arrays["weight"].astype(np.float64))
                rows = w.reshape(w.shape[0], -1).sum(axis=1)
                bias = np.abs(node.arrays["bias"].astype(np.float64)) if "bias" in node.arrays else 0.0
                b = float(np.max(rows * ins[0] + bias))
            elif node.op == "dequantize":
                b = 32768.0 * 2.0 ** -view.node(node.inputs[0]).frac
            elif node.op == "add":
                b = ins[0] + ins[1]
            else:                                # relu, pooling, shortcut, flatten keep |x| <= the input's
                b = ins[0]
            if not b <= FLOAT_LIMIT:
                where = f"node {node.name!r} ({node.op})" + (f" of sub-net {k}" if art.num_subnets > 1 else "")
                raise ArtifactError(f"{where}: its float32 values may reach {b:.3g}, beyond float32's range: the "
                                    f"host layers' weights or the input normalisation are far out of range")
            bound[node.name] = b


# -- values legal but certainly wrong ------------------------------------------------------------

@dataclass
class Finding:
    """One lint finding: level "error" (certainly wrong: `python -m pesto.artifact` exits 1) or
    "warning" (suspicious), where, and what."""

    level: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.where}: {self.message}"


NORMALISED_SPAN_MAX = 1e3   # |(pixel/255 - mean) / std| of a real normalisation stays far below


def lint(art) -> list[Finding]:
    """Flag legal values that are certainly wrong (docs/format.md, "Rules": checked by
    `python -m pesto.artifact`). ``art`` is a loaded pesto.artifact.Artifact."""
    found: list[Finding] = []
    mean, std = art.mean.astype(float), art.std.astype(float)
    span = max(abs((0 - mean) / std).max(), abs((1 - mean) / std).max())
    if span > NORMALISED_SPAN_MAX:
        found.append(Finding("error", "meta.input", f"mean {mean.tolist()} / std {std.tolist()} turn pixels in "
                             f"[0, 1] into values up to {span:.3g}: not a pixel normalisation (std is usually "
                             f"0.1..1)"))
    for k in range(art.num_subnets):
        view = art.subnet(k)
        tag = f"sub-net {art.subnet_names[k]!r} " if art.num_subnets > 1 else ""
        for node in view.nodes:
            if node.op in ("conv", "linear") and not node.arrays["weight"].any():
                found.append(Finding("error", f"{tag}node {node.name!r} ({node.op})",
                                     "all weights are zero: everything after it ignores the input"))
            if node.op == "tconv":
                found += _lint_stage(node.layer, f"{tag}layer {node.name!r}")
    return found


def output_range(layer, n: int) -> tuple[int, int]:
    """The int16 outputs channel ``n`` of ``layer`` can produce over every int16 input: the output
    stage is monotone in the accumulator, so its ends are the outputs of the extreme accumulators."""
    codes = layer.codes[n]
    plus, minus = int((codes == 1).sum()), int((codes == -1).sum())
    acc = (-(plus * 32768 + minus * 32767), plus * 32767 + minus * 32768)
    ends = []
    for a in acc:
        v = a * int(layer.mult[n]) + int(layer.bias[n])
        s = int(layer.shift[n])
        v = (v + (1 << (s - 1) if s else 0)) >> s
        if layer.relu:
            v = max(v, 0)
        ends.append(min(max(v, numerics.ACT_MIN), numerics.ACT_MAX))
    return min(ends), max(ends)


def _lint_stage(layer, where: str) -> list[Finding]:
    live = [n for n in range(layer.out_channels) if layer.codes[n].any()]
    if not live:
        return [Finding("warning", where, "every group is zero: the layer outputs its bias alone")]
    const = []
    for n in live:
        lo, hi = output_range(layer, n)
        if lo == hi:
            const.append((n, lo))
    if not const:
        return []
    n, v = const[0]
    detail = (f"e.g. channel {n}: mult {int(layer.mult[n])}, shift {int(layer.shift[n])}, bias {int(layer.bias[n])} "
              f"gives {v} for every input")
    if len(const) == len(live):
        return [Finding("error", where, f"the output stage makes every channel constant whatever the input "
                        f"({detail}): the layer ignores its input; export it again")]
    return [Finding("warning", where, f"{len(const)} of {len(live)} channels with weights are constant whatever "
                    f"the input ({detail})")]
