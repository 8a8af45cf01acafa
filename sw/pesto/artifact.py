"""The export artifact: one self-checking file that everything downstream consumes (numpy only).

An artifact holds the layer graph of one network, exported for the accelerator:

* accelerated layers (``tconv``) as 2-bit codes of the non-zero PE groups only, a 1-bit group
  indexer per (n, g) and the per-output-channel integer output stage; ``Artifact.layers``
  gives each as a :class:`pesto.ir.TernaryConv`;
* host layers (first conv + folded BN, pooling, last linear) in float32;
* the glue in between (quantize/dequantize with their fixed-point formats, residual adds,
  option-A shortcuts), input normalisation and the class count.

File layout (docs/format.md is the full specification)::

    0        8  magic b"PESTOART"
    8        2  format major (u16 LE)      a reader refuses a newer major
    10       2  format minor (u16 LE)      additive changes only
    12       4  flags (u32 LE, 0)
    16       8  manifest length M (u64 LE)
    24       8  blob section length B (u64 LE)
    32       M  manifest: UTF-8 JSON (nodes, blob table, metadata)
    32+M     B  blob section: raw little-endian arrays, each 8-byte aligned
    32+M+B  32  SHA-256 of every byte before it

Every format version keeps the magic, the version fields and the trailing SHA-256 where
they are, so a reader can tell corruption from a newer version. Never pickled.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import artifact_rules as rules
from . import geometry, numerics
from .errors import ArtifactError, ConfigError
from .hwspec.protocol import encode_codes
from .ir import SharedTernaryConv, SubnetStage, TernaryConv
from .artifact_rules import Finding, lint  # noqa: F401  (part of this module's API)
from .util import atomic_write_bytes, sha256

MAGIC = b"PESTOART"
FORMAT_VERSION = (1, 1)   # 1.1: sub-nets (docs/subnets.md)
HEADER = struct.Struct("<8sHHIQQ")   # magic, major, minor, flags, manifest bytes, blob bytes
DIGEST_BYTES = 32
ALIGN = 8

# The ops of the layer graph, with the domain of their output ("int": int16 with a frac,
# "float": float32, "same": the domain of their first input). docs/format.md defines each.
OPS = {
    "input": "float",       # the normalised image batch (B, C, H, W)
    "conv": "float",        # host float conv (+ folded BN) (+ ReLU)
    "linear": "float",      # host float linear (+ ReLU)
    "quantize": "int",      # float -> int16 at `frac`
    "dequantize": "float",  # int16 -> float
    "tconv": "int",         # accelerated ternary conv (pesto.ir.TernaryConv)
    "add": "same",          # residual add (numerics.add in the int domain) (+ ReLU)
    "shortcut": "same",     # option-A shortcut: subsample by `stride`, zero-pad channels
    "maxpool": "same",
    "avgpool": "float",
    "relu": "same",
    "flatten": "float",
}
_BLOB_DTYPES = set(rules.DTYPES)
MAX_SUBNETS = rules.MAX_SUBNETS
SUBNET_NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_STAGE_KEYS = ("issue", "mult", "shift", "bias")   # what a tconv stores per sub-net


@dataclass
class Subnet:
    """One sub-net of a multi-sub-net artifact: its name and metadata (docs/subnets.md)."""

    name: str
    meta: dict = field(default_factory=dict)


@dataclass
class Node:
    """One node of the layer graph. ``frac`` is set for int16 outputs, None for float ones."""

    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)   # host layers' float params
    layer: TernaryConv | None = None                                 # op == "tconv", K = 1
    frac: int | None = None
    shared: SharedTernaryConv | None = None                          # op == "tconv", K > 1
    subnet_arrays: list[dict[str, np.ndarray]] | None = None         # host arrays per sub-net, K > 1

    @property
    def on_host(self) -> bool:
        return self.op != "tconv"

    def __repr__(self) -> str:
        return f"Node({self.name!r}, {self.op}, inputs={self.inputs}, frac={self.frac})"


@dataclass
class Artifact:
    """The exported network: nodes in execution order plus metadata (``meta``)."""

    nodes: list[Node]
    output: str
    meta: dict = field(default_factory=dict)
    subnets: list[Subnet] = field(default_factory=list)   # empty: one sub-net (K = 1)

    def __post_init__(self):
        self._views: dict[int, Artifact] = {}
        self.validate()

    # -- access ---------------------------------------------------------------------------
    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node {name!r}; nodes are: {', '.join(n.name for n in self.nodes)}")

    @property
    def layers(self) -> list[TernaryConv]:
        """The accelerated layers in execution order (K = 1; pick a sub-net first otherwise)."""
        self._single("layers")
        return [n.layer for n in self.nodes if n.op == "tconv"]

    # -- sub-nets (docs/subnets.md) -------------------------------------------------------
    @property
    def num_subnets(self) -> int:
        return max(len(self.subnets), 1)

    @property
    def subnet_names(self) -> list[str]:
        if self.subnets:
            return [s.name for s in self.subnets]
        return [self.meta.get("subnet", {}).get("name", "default")]

    def subnet_index(self, key) -> int:
        """The index of sub-net ``key`` (an index or a name)."""
        names = self.subnet_names
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            if 0 <= key < len(names):
                return int(key)
            raise ConfigError(f"sub-net index {key} out of range: this artifact holds {len(names)} "
                              f"sub-net(s) (0..{len(names) - 1}: {', '.join(names)})")
        if isinstance(key, str) and key in names:
            return names.index(key)
        raise ConfigError(f"no sub-net {key!r}; this artifact holds: "
                          + ", ".join(f"{i} {n!r}" for i, n in enumerate(names)))

    def subnet(self, key) -> "Artifact":
        """Sub-net ``key`` (index or name) as a plain K = 1 artifact: what that sub-net computes."""
        k = self.subnet_index(key)
        if not self.subnets:
            return self
        if k not in self._views:
            nodes = []
            for node in self.nodes:
                view = Node(node.name, node.op, list(node.inputs), dict(node.attrs), dict(node.arrays),
                            frac=node.frac)
                if node.op == "tconv":
                    view.layer = node.shared.subnet(k)
                    view.attrs["nnz_groups"] = view.layer.nnz_groups
                elif node.subnet_arrays:
                    view.arrays.update(node.subnet_arrays[k])
                nodes.append(view)
            meta = copy.deepcopy(self.meta)
            meta["subnet"] = {"index": k, "name": self.subnets[k].name, "of": len(self.subnets),
                              "names": self.subnet_names, "meta": copy.deepcopy(self.subnets[k].meta)}
            self._views[k] = Artifact(nodes, self.output, meta)
        return self._views[k]

    @property
    def shared_layers(self) -> list[SharedTernaryConv]:
        """The accelerated layers as the engine stores them: codes once, K issue maps and stages."""
        return [n.shared if n.shared is not None else SharedTernaryConv.from_layer(n.layer)
                for n in self.nodes if n.op == "tconv"]

    def subnet_stats(self) -> list[dict]:
        """Per sub-net: name, meta and its totals (groups, issued groups, group sparsity, eq 2.8, G/G_k)."""
        return [{"index": k, "name": name, "meta": self.subnets[k].meta if self.subnets else {},
                 **self.subnet(k).totals()} for k, name in enumerate(self.subnet_names)]

    def storage_stats(self) -> list[dict]:
        """Per layer, what is stored: the union of the sub-nets' groups (K = 1: ``layer_stats``)."""
        if not self.subnets:
            return self.layer_stats()
        return [layer_stats(s) for s in self.shared_layers]

    def _single(self, what: str) -> None:
        if self.subnets:
            raise ConfigError(f"this artifact holds {len(self.subnets)} sub-nets ({', '.join(self.subnet_names)}); "
                              f"{what} belong to one of them: use artifact.subnet(k) first")

    @property
    def host_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.op in ("conv", "linear")]

    @property
    def num_classes(self) -> int:
        return int(self.meta["num_classes"])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.meta["input"]["shape"])

    @property
    def mean(self) -> np.ndarray:
        return np.asarray(self.meta["input"]["mean"], dtype=np.float32)

    @property
    def std(self) -> np.ndarray:
        return np.asarray(self.meta["input"]["std"], dtype=np.float32)

    def layer_stats(self) -> list[dict]:
        """Per accelerated layer: shape, groups, non-zero groups, eq 2.8 compression, skip speedup."""
        return [layer_stats(layer) for layer in self.layers]

    def totals(self) -> dict:
        return totals(self.layer_stats())

    def describe(self) -> str:
        """The per-layer table (shape, groups, non-zero groups, eq 2.8, G/G_nz) with totals; with
        sub-nets one table per sub-net, then what is stored (the union of their groups)."""
        if not self.subnets:
            return format_table(self.layer_stats(), self.totals())
        parts = []
        for k, name in enumerate(self.subnet_names):
            view = self.subnet(k)
            parts.append(f"sub-net {k} {name!r}:\n{format_table(view.layer_stats(), view.totals())}")
        stored = self.storage_stats()
        parts.append(f"stored (union of the {len(self.subnets)} sub-nets' groups):\n"
                     f"{format_table(stored, totals(stored))}")
        return "\n\n".join(parts)

    def __repr__(self) -> str:
        name = self.meta.get('model', {}).get('name', '?')
        if self.subnets:
            subs = ", ".join(f"{s['name']} {100 * s['group_sparsity']:.1f}%" for s in self.subnet_stats())
            return (f"Artifact({name}: {len(self.nodes)} nodes, {len(self.shared_layers)} accelerated layers, "
                    f"{len(self.subnets)} sub-nets with group sparsity {subs})")
        t = self.totals()
        return (f"Artifact({name}: {len(self.nodes)} nodes, "
                f"{t['layers']} accelerated layers, group sparsity {100 * t['group_sparsity']:.1f}%, "
                f"eq 2.8 {fmt_rate(t['compression'])}x)")

    # -- checks ---------------------------------------------------------------------------
    def validate(self) -> None:
        """Graph consistency: names unique, inputs defined before use, formats agree; sub-nets
        consistent (docs/subnets.md)."""
        self._validate_subnets()
        seen: dict[str, Node] = {}
        for node in self.nodes:
            where = f"node {node.name!r} ({node.op})"
            if node.op not in OPS:
                raise ConfigError(f"{where}: unknown op; known ops: {', '.join(OPS)}")
            if node.name in seen:
                raise ConfigError(f"{where}: duplicate node name")
            for i in node.inputs:
                if i not in seen:
                    raise ConfigError(f"{where}: input {i!r} is not defined before it")
            ins = [seen[i] for i in node.inputs]
            want = {"input": 0, "add": 2}.get(node.op, 1)
            if len(ins) != want:
                raise ConfigError(f"{where}: takes {want} input(s), got {len(ins)}")
            domain = OPS[node.op]
            if domain == "same":
                domain = "int" if ins[0].frac is not None else "float"
            if (node.frac is not None) != (domain == "int"):
                raise ConfigError(f"{where}: output domain is {domain} but frac is {node.frac}")
            if node.op in ("tconv", "dequantize") and ins[0].frac is None:
                raise ConfigError(f"{where}: needs an int16 input; insert a quantize node")
            if node.op == "quantize" and ins[0].frac is not None:
                raise ConfigError(f"{where}: input is already int16")
            if node.op == "add" and (ins[0].frac is None) != (ins[1].frac is None):
                raise ConfigError(f"{where}: both inputs must be int16 or both float")
            if node.op in ("shortcut", "maxpool", "relu") and node.frac != ins[0].frac:
                raise ConfigError(f"{where}: keeps its input's format {ins[0].frac}, not {node.frac}")
            if node.op == "tconv":
                layer = node.shared if self.subnets else node.layer
                if layer is None:
                    raise ConfigError(f"{where}: no {'SharedTernaryConv' if self.subnets else 'TernaryConv'} attached")
                if layer.f_in != ins[0].frac or layer.f_out != node.frac:
                    raise ConfigError(f"{where}: layer formats (f_in={layer.f_in}, f_out="
                                      f"{layer.f_out}) disagree with the graph ({ins[0].frac}, {node.frac})")
            seen[node.name] = node
        if self.output not in seen:
            raise ConfigError(f"output node {self.output!r} is not in the graph")

    def _validate_subnets(self) -> None:
        k = len(self.subnets)
        if k == 1 or k > MAX_SUBNETS:
            raise ConfigError(f"an artifact holds 1 sub-net (no list) or 2..{MAX_SUBNETS}, got {k}")
        names = set()
        for s in self.subnets:
            if not isinstance(s.name, str) or not SUBNET_NAME.fullmatch(s.name) or s.name in names:
                raise ConfigError(f"sub-net name {s.name!r} must be unique, 1-32 characters of [A-Za-z0-9_.-]")
            if not isinstance(s.meta, dict):
                raise ConfigError(f"sub-net {s.name!r}: meta must be an object")
            names.add(s.name)
        for node in self.nodes:
            where = f"node {node.name!r} ({node.op})"
            if node.op == "tconv" and k and (node.shared is None or node.shared.num_subnets != k):
                raise ConfigError(f"{where}: needs a SharedTernaryConv with one stage per sub-net ({k})")
            if node.op == "tconv" and not k and node.shared is not None:
                raise ConfigError(f"{where}: a shared layer in an artifact without sub-nets")
            if node.subnet_arrays is None:
                continue
            if node.op == "tconv" or not k or len(node.subnet_arrays) != k:
                raise ConfigError(f"{where}: per-sub-net arrays need a host node and one entry per sub-net ({k})")
            keys = set(node.subnet_arrays[0])
            for i, arrays in enumerate(node.subnet_arrays):
                if set(arrays) != keys or keys & set(node.arrays):
                    raise ConfigError(f"{where}: sub-net {i} has arrays {sorted(arrays)}, expected {sorted(keys)} "
                                      f"and none of the shared ones {sorted(node.arrays)}")
                for key in keys:
                    if arrays[key].shape != node.subnet_arrays[0][key].shape:
                        raise ConfigError(f"{where}: array {key!r} of sub-net {i} has shape {arrays[key].shape}, "
                                          f"sub-net 0's has {node.subnet_arrays[0][key].shape}")


# -- per-layer statistics (eq 2.8) ----------------------------------------------------------

def layer_stats(layer: TernaryConv | SharedTernaryConv) -> dict:
    n, c, kh, kw = layer.codes.shape
    g_total = n * layer.groups
    nnz = layer.nnz_groups
    gs = 1 - nnz / g_total
    return {
        "name": layer.name, "shape": [n, c, kh, kw], "cg": layer.cg,
        "groups": g_total, "nnz_groups": nnz, "group_sparsity": gs,
        "sparsity": float((layer.codes == 0).mean()),
        "compression": compression_rate(gs),
        "speedup_ideal": g_total / nnz if nnz else math.inf,
        "weights": n * c * kh * kw,
        "code_bytes": code_bytes(nnz, layer.cg, kh, kw),
        "indexer_bytes": math.ceil(g_total / 8),
    }


def totals(stats: list[dict]) -> dict:
    g = sum(s["groups"] for s in stats)
    nnz = sum(s["nnz_groups"] for s in stats)
    weights = sum(s["weights"] for s in stats)
    gs = 1 - nnz / g if g else 0.0
    return {
        "layers": len(stats), "groups": g, "nnz_groups": nnz, "group_sparsity": gs,
        "sparsity": sum(s["sparsity"] * s["weights"] for s in stats) / weights if weights else 0.0,
        "compression": compression_rate(gs), "speedup_ideal": g / nnz if nnz else math.inf,
        "weights": weights,
        "code_bytes": sum(s["code_bytes"] for s in stats),
        "indexer_bytes": sum(s["indexer_bytes"] for s in stats),
    }


def format_table(stats: list[dict], total: dict) -> str:
    head = f"{'layer':<22} {'weight shape':<18} {'Cg':>3} {'groups':>7} {'nz groups':>9} {'Gs %':>6} " \
           f"{'comp. x':>8} {'speedup':>8}"
    lines = [head, "-" * len(head)]
    for s in stats:
        lines.append(f"{s['name']:<22} {'x'.join(map(str, s['shape'])):<18} {s['cg']:>3} {s['groups']:>7} "
                     f"{s['nnz_groups']:>9} {100 * s['group_sparsity']:>6.1f} {fmt_rate(s['compression']):>8} "
                     f"{fmt_rate(s['speedup_ideal']):>8}")
    lines.append("-" * len(head))
    lines.append(f"{'total (' + str(total['layers']) + ' layers)':<22} {total['weights']:>18,} {'':>3} "
                 f"{total['groups']:>7} {total['nnz_groups']:>9} {100 * total['group_sparsity']:>6.1f} "
                 f"{fmt_rate(total['compression']):>8} {fmt_rate(total['speedup_ideal']):>8}")
    return "\n".join(lines)


def fmt_rate(v: float) -> str:
    return "inf" if math.isinf(v) else f"{v:.2f}"


def compression_rate(group_sparsity: float, bits: int = 2) -> float:
    """Eq 2.8: C = 32 / ((1 - Gs) * n)."""
    return 32 / ((1 - group_sparsity) * bits) if group_sparsity < 1 else math.inf


def code_bytes(nnz_groups: int, cg: int, kh: int, kw: int) -> int:
    return math.ceil(nnz_groups * cg * kh * kw * 2 / 8)


# -- packing the ternary codes ---------------------------------------------------------------

def pack_codes(codes: np.ndarray, cg: int) -> tuple[np.ndarray, np.ndarray]:
    """(indexer, codes) byte arrays of int8 codes (N, C, Kh, Kw).

    indexer: one bit per (n, g), row-major, LSB first. codes: the groups whose indexer bit is
    set, in (n, g) order, each cg * Kh * Kw 2-bit codes in (channel, ky, kx) order with channels
    past C as zeros, four codes per byte starting at the LSB; no padding between groups.
    """
    groups = geometry.group_view(np.asarray(codes, dtype=np.int8), cg)   # (N, G, cg*Kh*Kw)
    indexer = (groups != 0).any(axis=2)
    nz = encode_codes(groups[indexer].reshape(-1))
    return pack_mask(indexer), _pack2(nz)


def unpack_codes(indexer: np.ndarray, packed: np.ndarray, shape, cg: int) -> np.ndarray:
    """Inverse of ``pack_codes``: int8 codes (N, C, Kh, Kw). Raises ArtifactError on codes
    that contradict the indexer or the padding, or on the reserved code 2."""
    n, c, kh, kw = (int(v) for v in shape)
    g = geometry.num_groups(c, cg)
    gsize = cg * kh * kw
    mask = unpack_mask(indexer, n, g, "indexer")
    nnz = int(mask.sum())
    if packed.size != code_bytes(nnz, cg, kh, kw):
        raise ArtifactError(f"codes blob has {packed.size} bytes, the indexer's {nnz} non-zero groups "
                            f"need {code_bytes(nnz, cg, kh, kw)}")
    raw = _unpack2(packed, nnz * gsize)
    if (raw == 2).any():
        raise ArtifactError("codes blob holds the reserved 2-bit code 2")
    if _unpack2(packed, packed.size * 4)[nnz * gsize:].any():
        raise ArtifactError("codes blob has non-zero padding after its last group")
    values = np.where(raw == 3, -1, raw.astype(np.int8)).astype(np.int8).reshape(nnz, gsize)
    if nnz and not values.any(axis=1).all():
        raise ArtifactError("the indexer marks a group non-zero whose codes are all zero")
    groups = np.zeros((n, g, gsize), dtype=np.int8)
    groups[mask] = values
    full = groups.reshape(n, g * cg, kh, kw)
    if full[:, c:].any():
        raise ArtifactError(f"codes of the zero-padded channels {c}..{g * cg - 1} are not zero")
    return np.ascontiguousarray(full[:, :c])


def _pack2(values: np.ndarray) -> np.ndarray:
    v = np.zeros(math.ceil(values.size / 4) * 4, dtype=np.uint8)
    v[:values.size] = values
    v = v.reshape(-1, 4)
    return (v[:, 0] | (v[:, 1] << 2) | (v[:, 2] << 4) | (v[:, 3] << 6)).astype(np.uint8)


def _unpack2(packed: np.ndarray, count: int) -> np.ndarray:
    p = np.asarray(packed, dtype=np.uint8).reshape(-1, 1)
    return ((p >> np.array([0, 2, 4, 6], dtype=np.uint8)) & 3).reshape(-1)[:count]


# -- save / load --------------------------------------------------------------------------

def to_bytes(artifact: Artifact) -> bytes:
    """The complete file contents of ``artifact``."""
    artifact.validate()
    blobs: list[bytes] = []
    table: dict[str, dict] = {}
    offset = 0

    def add_blob(name: str, arr: np.ndarray) -> str:
        nonlocal offset
        arr = np.ascontiguousarray(arr)
        arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        if arr.dtype.str not in _BLOB_DTYPES:
            raise ConfigError(f"blob {name!r}: dtype {arr.dtype} is not storable")
        data = arr.tobytes()
        pad = (-len(data)) % ALIGN
        table[name] = {"offset": offset, "nbytes": len(data), "dtype": arr.dtype.str, "shape": list(arr.shape)}
        blobs.append(data + b"\0" * pad)
        offset += len(data) + pad
        return name

    nodes = []
    for node in artifact.nodes:
        entry = {"name": node.name, "op": node.op, "inputs": list(node.inputs), "frac": node.frac,
                 "attrs": dict(node.attrs), "blobs": {}}
        for key, arr in node.arrays.items():
            entry["blobs"][key] = add_blob(f"{node.name}/{key}", arr)
        if node.op == "tconv" and not artifact.subnets:
            layer = node.layer
            indexer, codes = pack_codes(layer.codes, layer.cg)
            entry["attrs"].update(_layer_attrs(layer))
            entry["blobs"].update(
                indexer=add_blob(f"{node.name}/indexer", indexer),
                codes=add_blob(f"{node.name}/codes", codes),
                **_stage_blobs(add_blob, node.name, layer))
        elif node.op == "tconv":
            shared = node.shared
            indexer, codes = pack_codes(shared.codes, shared.cg)
            entry["attrs"].update(_layer_attrs(shared))
            entry["blobs"].update(indexer=add_blob(f"{node.name}/indexer", indexer),
                                  codes=add_blob(f"{node.name}/codes", codes))
            entry["subnet_blobs"] = [
                {"issue": add_blob(f"{node.name}/{k}/issue", pack_mask(st.issue)),
                 **_stage_blobs(add_blob, f"{node.name}/{k}", st)}
                for k, st in enumerate(shared.stages)]
        elif node.subnet_arrays:
            entry["subnet_blobs"] = [{key: add_blob(f"{node.name}/{k}/{key}", arr) for key, arr in arrays.items()}
                                     for k, arrays in enumerate(node.subnet_arrays)]
        nodes.append(entry)
    manifest = {
        "format": "pesto-artifact", "format_version": list(FORMAT_VERSION),
        "meta": artifact.meta, "output": artifact.output, "nodes": nodes, "blobs": table,
    }
    if artifact.subnets:
        manifest["subnets"] = [{"name": s.name, "meta": s.meta} for s in artifact.subnets]
    mbytes = json.dumps(manifest, separators=(",", ":"), allow_nan=False).encode("utf-8")
    mbytes += b" " * ((-len(mbytes)) % ALIGN)
    body = HEADER.pack(MAGIC, *FORMAT_VERSION, 0, len(mbytes), offset) + mbytes + b"".join(blobs)
    return body + bytes.fromhex(sha256(body))


def save(artifact: Artifact, path) -> Path:
    """Write ``artifact`` to ``path`` atomically (an interrupted save leaves no half file).
    The bytes are read back first: a file this pesto would refuse is never written."""
    path = Path(path)
    data = to_bytes(artifact)
    try:
        from_bytes(data, "the artifact to save")
    except ArtifactError as e:
        raise ArtifactError(f"refusing to write {path}, it breaks the format's rules: {e}") from None
    atomic_write_bytes(path, data)
    return path


def load(path, max_bytes: int = rules.MAX_FILE_BYTES) -> Artifact:
    """Read and verify an artifact. Any damage raises ArtifactError naming what is wrong.

    Only a regular file is read (a FIFO, a device such as /dev/zero or a folder is refused
    without reading it), and only after its header holds the magic and section lengths that
    add up to its size, so a foreign or huge file is never read in full.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise ArtifactError(f"cannot read artifact {path}: {e.strerror or e}") from e
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = ("a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else
                "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file")
        raise ArtifactError(f"{path} is {kind}, not an artifact file; give the path of a .pesto file")
    with os.fdopen(fd, "rb", buffering=0) as f:
        try:
            head = f.read(HEADER.size)
            _check_header(head, st.st_size, str(path), max_bytes)
            data = head + _read_exactly(f, st.st_size - len(head))
        except OSError as e:
            raise ArtifactError(f"cannot read artifact {path}: {e.strerror or e}") from e
    if len(data) != st.st_size:
        raise ArtifactError(f"{path}: the file changed size while it was read ({st.st_size} -> {len(data)} "
                            f"bytes); read it again once it is written")
    return from_bytes(data, str(path), max_bytes)


def _read_exactly(f, n: int) -> bytes:
    chunks, left = [], n
    while left > 0:
        chunk = f.read(min(left, 1 << 24))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _check_header(head: bytes, size: int, where: str, max_bytes: int) -> None:
    """Magic first, then sizes: what can be told from the first 32 bytes and the file size."""
    if head[:8] != MAGIC:
        if head and MAGIC.startswith(head[:8]) and size < HEADER.size + DIGEST_BYTES:
            raise ArtifactError(f"{where}: truncated ({size} bytes); export it again")
        raise ArtifactError(f"{where}: not a pesto artifact (no {MAGIC!r} magic); "
                            f"create one with `pesto export-to-fpga`")
    if size < HEADER.size + DIGEST_BYTES:
        raise ArtifactError(f"{where}: truncated ({size} bytes); export it again")
    if size > max_bytes:
        raise ArtifactError(f"{where}: {size:,} bytes is more than an artifact may hold ({max_bytes:,}); "
                            f"not reading it")
    _, _, _, _, mlen, blen = HEADER.unpack_from(head)
    if HEADER.size + mlen + blen + DIGEST_BYTES != size:
        raise ArtifactError(f"{where}: its header's section lengths (manifest {mlen}, blobs {blen}) do not add "
                            f"up to the file size {size}: the file is truncated or corrupt; copy or export it again")


def from_bytes(data: bytes, where: str = "artifact", max_bytes: int = rules.MAX_FILE_BYTES) -> Artifact:
    """Verify and parse the complete contents of an artifact file (see ``load``)."""
    if len(data) < HEADER.size + DIGEST_BYTES or data[:8] != MAGIC:
        if data[:8] == MAGIC[:len(data[:8])] and len(data) < HEADER.size + DIGEST_BYTES:
            raise ArtifactError(f"{where}: truncated ({len(data)} bytes); export it again")
        raise ArtifactError(f"{where}: not a pesto artifact (no {MAGIC!r} magic); "
                            f"create one with `pesto export-to-fpga`")
    if len(data) > max_bytes:
        raise ArtifactError(f"{where}: {len(data):,} bytes is more than an artifact may hold ({max_bytes:,})")
    body, digest = data[:-DIGEST_BYTES], data[-DIGEST_BYTES:]
    if bytes.fromhex(sha256(body)) != digest:
        raise ArtifactError(f"{where}: checksum mismatch: the file is truncated or corrupt; "
                            f"copy or export it again")
    _, major, minor, flags, mlen, blen = HEADER.unpack_from(data)
    if major > FORMAT_VERSION[0]:
        raise ArtifactError(f"{where}: format version {major}.{minor} is newer than this pesto reads "
                            f"({FORMAT_VERSION[0]}.x); upgrade pesto")
    if major < 1:
        raise ArtifactError(f"{where}: unknown format version {major}.{minor}")
    try:
        return _parse(data, (major, minor), flags, mlen, blen)
    except ArtifactError as e:
        raise ArtifactError(f"{where}: {e}") from None
    except (ConfigError, ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError,
            MemoryError, RecursionError) as e:
        raise ArtifactError(f"{where}: malformed artifact ({type(e).__name__}: {e}); export it again") from None


def _parse(data: bytes, version: tuple[int, int], flags: int, mlen: int, blen: int) -> Artifact:
    start = HEADER.size
    if start + mlen + blen + DIGEST_BYTES != len(data):
        raise ArtifactError(f"section lengths (manifest {mlen}, blobs {blen}) do not add up to the file size")
    if flags != 0 and version[1] <= FORMAT_VERSION[1]:
        raise ArtifactError(f"header flags 0x{flags:08X}: format {version[0]}.{version[1]} defines none")
    if mlen % ALIGN or mlen > rules.MAX_MANIFEST_BYTES:
        raise ArtifactError(f"manifest length {mlen} must be a multiple of {ALIGN} and at most "
                            f"{rules.MAX_MANIFEST_BYTES:,} bytes")
    manifest = rules.parse_json(data[start:start + mlen])
    plan = rules.check_manifest(manifest, version, FORMAT_VERSION[1], blen, len(data))
    blob_base = start + mlen

    def blob(name: str) -> np.ndarray:
        s = plan.blobs[name]
        at = blob_base + s.offset
        if data[at + s.nbytes:at + s.nbytes + (-s.nbytes) % ALIGN].strip(b"\0"):
            raise ArtifactError(f"blob {name!r}: the padding after it is not zero")
        arr = np.frombuffer(data, dtype=np.dtype(s.dtype), count=math.prod(s.shape), offset=at)
        arr = arr.reshape(s.shape).astype(np.dtype(s.dtype).newbyteorder("="))
        what = f"blob {name!r} ({s.role} of node {s.node!r})"
        if s.dtype == "<f4" and not np.isfinite(arr).all():
            raise ArtifactError(f"{what} holds NaN or inf")
        if s.role == "shift" and arr.max(initial=0) > numerics.SHIFT_MAX:
            raise ArtifactError(f"{what}: shift {int(arr.max())} exceeds {numerics.SHIFT_MAX}")
        if s.role == "bias" and s.dtype == "<i8" and (arr.min(initial=0) < numerics.BIAS_MIN
                                                      or arr.max(initial=0) > numerics.BIAS_MAX):
            raise ArtifactError(f"{what}: a bias does not fit in {numerics.BIAS_BITS} bits")
        return arr

    subnets = [Subnet(s["name"], s["meta"]) for s in manifest.get("subnets", [])]
    nodes = []
    for entry in manifest["nodes"]:
        attrs = dict(entry["attrs"])
        blobs = {k: blob(v) for k, v in entry["blobs"].items()}
        per_subnet = [{k: blob(v) for k, v in sb.items()} for sb in entry.get("subnet_blobs") or []]
        node = Node(entry["name"], entry["op"], list(entry["inputs"]), attrs, frac=entry["frac"])
        if node.op == "tconv" and not subnets:
            node.layer = _layer_from(node.name, attrs, blobs)
        elif node.op == "tconv":
            node.shared = _shared_from(node.name, attrs, blobs, per_subnet)
        else:
            node.arrays = blobs
            node.subnet_arrays = per_subnet or None
        nodes.append(node)
    art = Artifact(nodes, manifest["output"], manifest["meta"], subnets)
    rules.check_float_range(art)
    return art


def _layer_attrs(layer: TernaryConv | SharedTernaryConv) -> dict:
    return {"shape": list(layer.codes.shape), "cg": layer.cg, "stride": layer.stride,
            "padding": layer.padding, "relu": bool(layer.relu), "f_in": layer.f_in,
            "f_out": layer.f_out, "groups": layer.groups, "nnz_groups": layer.nnz_groups}


def _stage_blobs(add_blob, prefix: str, stage) -> dict:
    return {"mult": add_blob(f"{prefix}/mult", stage.mult.astype("<i2")),
            "shift": add_blob(f"{prefix}/shift", stage.shift.astype(np.uint8)),
            "bias": add_blob(f"{prefix}/bias", stage.bias.astype("<i8"))}


def _stored_codes(name: str, attrs: dict, blobs: dict) -> tuple[np.ndarray, int, list[int]]:
    shape = [int(v) for v in attrs["shape"]]
    cg = geometry.check_cg(int(attrs["cg"]), None, f"layer {name!r}")
    n, c = shape[:2]
    nnz = int(unpack_mask(blobs["indexer"], n, geometry.num_groups(c, cg), "indexer").sum())
    if nnz != int(attrs["nnz_groups"]):
        raise ArtifactError(f"layer {name!r}: manifest says {attrs['nnz_groups']} non-zero groups, "
                            f"the indexer holds {nnz}")
    return unpack_codes(blobs["indexer"], blobs["codes"], shape, cg), cg, shape


def _layer_from(name: str, attrs: dict, blobs: dict) -> TernaryConv:
    codes, cg, _ = _stored_codes(name, attrs, blobs)
    return TernaryConv(name=name, codes=codes, mult=blobs["mult"], shift=blobs["shift"],
                       bias=blobs["bias"], stride=int(attrs["stride"]), padding=int(attrs["padding"]),
                       cg=cg, relu=bool(attrs.get("relu", False)), f_in=int(attrs["f_in"]), f_out=int(attrs["f_out"]))


def _shared_from(name: str, attrs: dict, blobs: dict, per_subnet: list[dict]) -> SharedTernaryConv:
    if set(blobs) != {"indexer", "codes"}:
        raise ArtifactError(f"layer {name!r}: a shared layer stores indexer and codes, its stages per "
                            f"sub-net; found blobs {sorted(blobs)}")
    codes, cg, shape = _stored_codes(name, attrs, blobs)
    stages = []
    for k, sb in enumerate(per_subnet):
        if set(sb) != set(_STAGE_KEYS):
            raise ArtifactError(f"layer {name!r}: sub-net {k} stores {sorted(sb)}, expected {list(_STAGE_KEYS)}")
        issue = unpack_mask(sb["issue"], shape[0], geometry.num_groups(shape[1], cg))
        stages.append(SubnetStage(issue, sb["mult"], sb["shift"], sb["bias"]))
    return SharedTernaryConv(name, codes, stages, stride=int(attrs["stride"]), padding=int(attrs["padding"]),
                             cg=cg, relu=bool(attrs.get("relu", False)), f_in=int(attrs["f_in"]), f_out=int(attrs["f_out"]))


def pack_mask(mask: np.ndarray) -> np.ndarray:
    """bool (N, G) -> bytes: bit n*G + g, LSB first (the layout of the group indexer)."""
    return np.packbits(np.asarray(mask, dtype=bool).reshape(-1), bitorder="little")


def unpack_mask(packed: np.ndarray, n: int, g: int, what: str = "group mask") -> np.ndarray:
    """Inverse of ``pack_mask``; ArtifactError on a wrong size or bits set past the last group."""
    if packed.size != math.ceil(n * g / 8):
        raise ArtifactError(f"{what} has {packed.size} bytes, expected {math.ceil(n * g / 8)} for {n}x{g} groups")
    bits = np.unpackbits(packed, bitorder="little")
    if bits[n * g:].any():
        raise ArtifactError(f"{what} has bits set past its last group")
    return bits[:n * g].astype(bool).reshape(n, g)


# -- merging sub-nets ------------------------------------------------------------------------

def merge_subnets(views: list[Artifact], names: list[str], metas: list[dict] | None = None,
                  meta: dict | None = None) -> Artifact:
    """One K-sub-net artifact from K plain artifacts of the same graph (docs/subnets.md).

    The views must agree on the graph and every format; their codes must agree wherever two of
    them compute the same group. Stored: the union of their groups' codes once, per sub-net its
    issue map (its non-zero groups) and output stages; host arrays equal in every view once,
    the others per sub-net. ``merged.subnet(k)`` gives ``views[k]`` back, layer for layer.
    """
    k = len(views)
    metas = metas if metas is not None else [{} for _ in views]
    if not 2 <= k <= MAX_SUBNETS or len(names) != k or len(metas) != k:
        raise ConfigError(f"merge_subnets: 2..{MAX_SUBNETS} artifacts with one name and meta each, "
                          f"got {k} artifacts, {len(names)} names, {len(metas)} metas")
    if any(v.subnets for v in views):
        raise ConfigError("merge_subnets: the inputs must be single-sub-net artifacts")
    base = views[0]
    nodes = []
    for i, node in enumerate(base.nodes):
        peers = [v.nodes[i] if i < len(v.nodes) else None for v in views]
        for j, p in enumerate(peers):
            if p is None or (p.name, p.op, p.inputs, p.frac) != (node.name, node.op, node.inputs, node.frac):
                raise ConfigError(f"merge_subnets: sub-net {names[j]!r} differs from {names[0]!r} at node "
                                  f"{node.name!r} (graph or format); export every sub-net with shared formats")
        merged = Node(node.name, node.op, list(node.inputs), dict(node.attrs), frac=node.frac)
        if node.op == "tconv":
            merged.shared = _merge_layer([p.layer for p in peers], names)
            merged.attrs.pop("alpha", None)
            merged.attrs["alpha"] = [p.attrs.get("alpha") for p in peers]
        else:
            if any(set(p.arrays) != set(node.arrays) for p in peers):
                raise ConfigError(f"merge_subnets: node {node.name!r} holds other arrays in some sub-nets")
            for key, arr in node.arrays.items():
                if all(np.array_equal(p.arrays[key], arr) and p.arrays[key].dtype == arr.dtype for p in peers):
                    merged.arrays[key] = arr
            own = [key for key in node.arrays if key not in merged.arrays]
            if own:
                merged.subnet_arrays = [{key: p.arrays[key] for key in own} for p in peers]
        nodes.append(merged)
    if any(len(v.nodes) != len(base.nodes) or v.output != base.output for v in views):
        raise ConfigError("merge_subnets: the artifacts have different graphs")
    return Artifact(nodes, base.output, copy.deepcopy(meta if meta is not None else base.meta),
                    [Subnet(n, dict(m)) for n, m in zip(names, metas)])


def _merge_layer(layers: list[TernaryConv], names: list[str]) -> SharedTernaryConv:
    first = layers[0]
    fixed = ("stride", "padding", "cg", "relu", "f_in", "f_out")
    codes = np.zeros_like(first.codes)
    have = np.zeros(first.indexer.shape, dtype=bool)
    for layer, name in zip(layers, names):
        if layer.codes.shape != first.codes.shape or any(getattr(layer, a) != getattr(first, a) for a in fixed):
            raise ConfigError(f"merge_subnets: layer {first.name!r} of sub-net {name!r} differs in shape, "
                              f"{', '.join(fixed)}")
        idx = layer.indexer
        both = geometry.expand_group_mask(idx & have, first.cg, *first.codes.shape[1:])
        if (np.where(both, layer.codes, 0) != np.where(both, codes, 0)).any():
            raise ConfigError(f"merge_subnets: layer {first.name!r}: sub-net {name!r} has other codes in "
                              f"groups another sub-net also computes; sub-nets must share their codes")
        new = geometry.expand_group_mask(idx & ~have, first.cg, *first.codes.shape[1:])
        codes = np.where(new, layer.codes, codes).astype(np.int8)
        have |= idx
    stages = [SubnetStage(layer.indexer, layer.mult, layer.shift, layer.bias) for layer in layers]
    return SharedTernaryConv(first.name, codes, stages, first.stride, first.padding, first.cg, first.relu,
                             first.f_in, first.f_out)


def main(argv=None) -> int:
    """`python -m pesto.artifact FILE...`: verify artifacts, print their layer tables and flag
    values that are legal but certainly wrong (no torch needed). Exit status: 0 all good,
    1 a file refused or flagged with an error, 2 usage."""
    import sys
    paths = sys.argv[1:] if argv is None else argv
    if not paths or any(p.startswith("-") for p in paths):
        print("usage: python -m pesto.artifact FILE.pesto [...]\n"
              "verifies each artifact (every rule of docs/format.md), prints its layer table and flags "
              "values that are legal but certainly wrong; exit 1 if any file is refused or flagged", file=sys.stderr)
        return 2
    status = 0
    for p in paths:
        try:
            art = load(p)
        except ArtifactError as e:
            print(f"{p}: {e}", file=sys.stderr)
            status = 1
            continue
        print(f"{p}: {art!r}\n{art.describe()}\n")
        findings = lint(art)
        for f in findings:
            print(f"{p}: {f}", file=sys.stderr)
        if any(f.level == "error" for f in findings):
            print(f"{p}: refused: {sum(f.level == 'error' for f in findings)} value(s) that are certainly wrong",
                  file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
