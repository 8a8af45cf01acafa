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

import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import geometry
from .errors import ArtifactError, ConfigError
from .hwspec.protocol import encode_codes
from .ir import TernaryConv
from .util import atomic_write_bytes, sha256

MAGIC = b"PESTOART"
FORMAT_VERSION = (1, 0)
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
_BLOB_DTYPES = {"<f4", "<i2", "|u1", "<i8", "|i1"}


@dataclass
class Node:
    """One node of the layer graph. ``frac`` is set for int16 outputs, None for float ones."""

    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)   # host layers' float params
    layer: TernaryConv | None = None                                 # op == "tconv"
    frac: int | None = None

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

    def __post_init__(self):
        self.validate()

    # -- access ---------------------------------------------------------------------------
    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node {name!r}; nodes are: {', '.join(n.name for n in self.nodes)}")

    @property
    def layers(self) -> list[TernaryConv]:
        """The accelerated layers in execution order."""
        return [n.layer for n in self.nodes if n.op == "tconv"]

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
        """The per-layer table (shape, groups, non-zero groups, eq 2.8, G/G_nz) with totals."""
        return format_table(self.layer_stats(), self.totals())

    def __repr__(self) -> str:
        t = self.totals()
        return (f"Artifact({self.meta.get('model', {}).get('name', '?')}: {len(self.nodes)} nodes, "
                f"{t['layers']} accelerated layers, group sparsity {100 * t['group_sparsity']:.1f}%, "
                f"eq 2.8 {fmt_rate(t['compression'])}x)")

    # -- checks ---------------------------------------------------------------------------
    def validate(self) -> None:
        """Graph consistency: names unique, inputs defined before use, formats agree."""
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
                if node.layer is None:
                    raise ConfigError(f"{where}: no TernaryConv attached")
                if node.layer.f_in != ins[0].frac or node.layer.f_out != node.frac:
                    raise ConfigError(f"{where}: layer formats (f_in={node.layer.f_in}, f_out="
                                      f"{node.layer.f_out}) disagree with the graph ({ins[0].frac}, {node.frac})")
            seen[node.name] = node
        if self.output not in seen:
            raise ConfigError(f"output node {self.output!r} is not in the graph")


# -- per-layer statistics (eq 2.8) ----------------------------------------------------------

def layer_stats(layer: TernaryConv) -> dict:
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
    return (np.packbits(indexer.reshape(-1), bitorder="little"), _pack2(nz))


def unpack_codes(indexer: np.ndarray, packed: np.ndarray, shape, cg: int) -> np.ndarray:
    """Inverse of ``pack_codes``: int8 codes (N, C, Kh, Kw). Raises ArtifactError on codes
    that contradict the indexer or the padding, or on the reserved code 2."""
    n, c, kh, kw = (int(v) for v in shape)
    g = geometry.num_groups(c, cg)
    gsize = cg * kh * kw
    if indexer.size != math.ceil(n * g / 8):
        raise ArtifactError(f"indexer has {indexer.size} bytes, expected {math.ceil(n * g / 8)} for {n}x{g} groups")
    bits = np.unpackbits(indexer, bitorder="little")
    if bits[n * g:].any():
        raise ArtifactError("indexer has bits set past its last group")
    mask = bits[:n * g].astype(bool).reshape(n, g)
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
        if node.op == "tconv":
            layer = node.layer
            indexer, codes = pack_codes(layer.codes, layer.cg)
            entry["attrs"].update(_layer_attrs(layer))
            entry["blobs"].update(
                indexer=add_blob(f"{node.name}/indexer", indexer),
                codes=add_blob(f"{node.name}/codes", codes),
                mult=add_blob(f"{node.name}/mult", layer.mult.astype("<i2")),
                shift=add_blob(f"{node.name}/shift", layer.shift.astype(np.uint8)),
                bias=add_blob(f"{node.name}/bias", layer.bias.astype("<i8")))
        nodes.append(entry)
    manifest = {
        "format": "pesto-artifact", "format_version": list(FORMAT_VERSION),
        "meta": artifact.meta, "output": artifact.output, "nodes": nodes, "blobs": table,
    }
    mbytes = json.dumps(manifest, separators=(",", ":"), allow_nan=False).encode("utf-8")
    mbytes += b" " * ((-len(mbytes)) % ALIGN)
    body = HEADER.pack(MAGIC, *FORMAT_VERSION, 0, len(mbytes), offset) + mbytes + b"".join(blobs)
    return body + bytes.fromhex(sha256(body))


def save(artifact: Artifact, path) -> Path:
    """Write ``artifact`` to ``path`` atomically (an interrupted save leaves no half file)."""
    path = Path(path)
    atomic_write_bytes(path, to_bytes(artifact))
    return path


def load(path) -> Artifact:
    """Read and verify an artifact. Any damage raises ArtifactError naming what is wrong."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ArtifactError(f"cannot read artifact {path}: {e.strerror or e}") from e
    return from_bytes(data, str(path))


def from_bytes(data: bytes, where: str = "artifact") -> Artifact:
    if len(data) < HEADER.size + DIGEST_BYTES or data[:8] != MAGIC:
        if data[:8] == MAGIC[:len(data[:8])] and len(data) < HEADER.size + DIGEST_BYTES:
            raise ArtifactError(f"{where}: truncated ({len(data)} bytes); export it again")
        raise ArtifactError(f"{where}: not a pesto artifact (no {MAGIC!r} magic); "
                            f"create one with `pesto export-to-fpga`")
    body, digest = data[:-DIGEST_BYTES], data[-DIGEST_BYTES:]
    if bytes.fromhex(sha256(body)) != digest:
        raise ArtifactError(f"{where}: checksum mismatch: the file is truncated or corrupt; "
                            f"copy or export it again")
    _, major, minor, _flags, mlen, blen = HEADER.unpack_from(data)
    if major > FORMAT_VERSION[0]:
        raise ArtifactError(f"{where}: format version {major}.{minor} is newer than this pesto reads "
                            f"({FORMAT_VERSION[0]}.x); upgrade pesto")
    if major < 1:
        raise ArtifactError(f"{where}: unknown format version {major}.{minor}")
    try:
        return _parse(data, mlen, blen)
    except ArtifactError as e:
        raise ArtifactError(f"{where}: {e}") from None
    except (ConfigError, ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError,
            MemoryError, RecursionError) as e:
        raise ArtifactError(f"{where}: malformed artifact ({type(e).__name__}: {e}); export it again") from None


def _parse(data: bytes, mlen: int, blen: int) -> Artifact:
    start = HEADER.size
    if start + mlen + blen + DIGEST_BYTES != len(data):
        raise ArtifactError(f"section lengths (manifest {mlen}, blobs {blen}) do not add up to the file size")
    manifest = json.loads(data[start:start + mlen].decode("utf-8"))
    if manifest.get("format") != "pesto-artifact":
        raise ArtifactError("manifest is not a pesto-artifact manifest")
    blob_base = start + mlen
    table = manifest["blobs"]

    def blob(name: str) -> np.ndarray:
        spec = table[name]
        dtype = spec["dtype"]
        if dtype not in _BLOB_DTYPES:
            raise ArtifactError(f"blob {name!r}: unsupported dtype {dtype!r}")
        off, nbytes = int(spec["offset"]), int(spec["nbytes"])
        shape = tuple(int(s) for s in spec["shape"])
        if off < 0 or nbytes < 0 or off + nbytes > blen:
            raise ArtifactError(f"blob {name!r} lies outside the blob section")
        dt = np.dtype(dtype)
        if nbytes != math.prod(shape) * dt.itemsize:
            raise ArtifactError(f"blob {name!r}: {nbytes} bytes do not hold shape {shape} of {dtype}")
        return np.frombuffer(data, dtype=dt, count=math.prod(shape), offset=blob_base + off).reshape(shape).copy()

    nodes = []
    for entry in manifest["nodes"]:
        attrs = dict(entry["attrs"])
        blobs = {k: blob(v) for k, v in entry["blobs"].items()}
        frac = entry["frac"]
        node = Node(str(entry["name"]), str(entry["op"]), [str(i) for i in entry["inputs"]], attrs,
                    frac=None if frac is None else int(frac))
        if node.op == "tconv":
            node.layer = _layer_from(node.name, attrs, blobs)
        else:
            node.arrays = blobs
        nodes.append(node)
    return Artifact(nodes, str(manifest["output"]), manifest["meta"])


def _layer_attrs(layer: TernaryConv) -> dict:
    return {"shape": list(layer.codes.shape), "cg": layer.cg, "stride": layer.stride,
            "padding": layer.padding, "relu": bool(layer.relu), "f_in": layer.f_in,
            "f_out": layer.f_out, "groups": layer.groups, "nnz_groups": layer.nnz_groups}


def _layer_from(name: str, attrs: dict, blobs: dict) -> TernaryConv:
    shape = [int(v) for v in attrs["shape"]]
    if len(shape) != 4 or min(shape) < 1:
        raise ArtifactError(f"layer {name!r}: bad weight shape {shape}")
    cg = geometry.check_cg(int(attrs["cg"]), None, f"layer {name!r}")
    if math.prod(shape[:1] + [geometry.padded_channels(shape[1], cg)] + shape[2:]) > 1 << 31:
        raise ArtifactError(f"layer {name!r}: shape {shape} with Cg={cg} is implausibly large")
    codes = unpack_codes(blobs["indexer"], blobs["codes"], shape, cg)
    layer = TernaryConv(name=name, codes=codes, mult=blobs["mult"], shift=blobs["shift"],
                        bias=blobs["bias"], stride=int(attrs["stride"]), padding=int(attrs["padding"]),
                        cg=cg, relu=bool(attrs["relu"]), f_in=int(attrs["f_in"]), f_out=int(attrs["f_out"]))
    if layer.nnz_groups != int(attrs["nnz_groups"]):
        raise ArtifactError(f"layer {name!r}: manifest says {attrs['nnz_groups']} non-zero groups, "
                            f"the indexer holds {layer.nnz_groups}")
    return layer


def main(argv=None) -> int:
    """`python -m pesto.artifact FILE...`: verify artifacts and print their layer tables (no torch)."""
    import sys
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m pesto.artifact FILE.pesto [...]", file=sys.stderr)
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
    return status


if __name__ == "__main__":
    raise SystemExit(main())
