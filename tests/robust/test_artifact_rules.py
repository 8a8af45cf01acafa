"""The artifact format's rules (docs/format.md, "Rules"): every case issue 16 found that loaded
and then gave garbage is refused on load with an ArtifactError naming it; values legal but
certainly wrong are flagged by `python -m pesto.artifact` (exit 1); the loader's memory is
bounded by the file's size; only regular files are read; and a property-based fuzz test."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from edits import edit_manifest, node, seal, set_blob, split
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny import images, tiny_artifact, tiny_multi

from pesto import artifact as A
from pesto import numerics, reference
from pesto.errors import ArtifactError
from pesto.ir import TernaryConv


@pytest.fixture(scope="module")
def tiny_bytes():
    return A.to_bytes(tiny_artifact())


@pytest.fixture(scope="module")
def multi_bytes():
    return A.to_bytes(tiny_multi())


def test_tiny_artifact_is_valid_and_runs(tiny_bytes, multi_bytes):
    art = A.from_bytes(tiny_bytes)
    assert reference.run(art, images()).shape == (2, 10)
    assert not [f for f in A.lint(art) if f.level == "error"]
    multi = A.from_bytes(multi_bytes)
    assert multi.num_subnets == 2 and not [f for f in A.lint(multi) if f.level == "error"]


def _blob_after(m, name):
    """The blob stored right after ``name``."""
    spec = m["blobs"][name]
    return min((b for b, s in m["blobs"].items() if s["offset"] > spec["offset"]), key=lambda b: m["blobs"][b]["offset"])


MANIFEST_CASES = [
    # the graph's output and class count
    ("wrong output node", lambda m: m.update(output="pool"), r"output node 'pool' gives \[8, 1, 1\]"),
    ("output not in graph", lambda m: m.update(output="nowhere"), "not in the graph"),
    ("class count", lambda m: m["meta"].update(num_classes=12), r"12 classes need \[12\]"),
    # shapes across the graph
    ("tconv channels", lambda m: node(m, "t2")["attrs"].update(shape=[8, 5, 1, 1]), "takes 5 channels, its input has 4"),
    ("add shapes", lambda m: node(m, "sc")["attrs"].update(pad_after=3), r"adds \[8, 4, 4\] and \[9, 4, 4\]"),
    ("input shape", lambda m: node(m, "input")["attrs"].update(shape=[1, 9, 9]), "differs from meta.input.shape"),
    ("linear on a map", lambda m: node(m, "fc").update(inputs=["pool"]), "needs a flat"),
    ("dead node", lambda m: m["nodes"].insert(3, {"name": "extra", "op": "relu", "inputs": ["conv1"], "frac": None,
                                                  "attrs": {}, "blobs": {}}), "feed nothing"),
    # absurd host-layer settings and formats
    ("stride 2^63", lambda m: node(m, "conv1")["attrs"].update(stride=2**63), "stride.* out of range"),
    ("pool kernel", lambda m: node(m, "mp")["attrs"].update(kernel=100), "does not fit the 4-pixel input"),
    ("pool padding", lambda m: node(m, "mp")["attrs"].update(padding=2), "exceeds half the kernel"),
    ("frac 2000", lambda m: node(m, "conv1.q").update(frac=2000), r"frac = 2000 is out of range -16\.\.30"),
    ("f_in 2000", lambda m: node(m, "t1")["attrs"].update(f_in=2000), "out of range"),
    ("tconv stride", lambda m: node(m, "t1")["attrs"].update(stride=3), "out of range 1..2"),
    ("cg 10^12", lambda m: node(m, "t1")["attrs"].update(cg=10**12), "out of range"),
    # the normalisation
    ("std 0", lambda m: m["meta"]["input"].update(std=[0.0]), "must be > 0"),
    ("std negative", lambda m: m["meta"]["input"].update(std=[-0.35]), "must be > 0"),
    ("mean count", lambda m: m["meta"]["input"].update(mean=[0.1, 0.2]), "must have 1 entries"),
    # JSON value types
    ("false is not 0", lambda m: node(m, "mp")["attrs"].update(padding=False), "must be an integer, got false"),
    ("0 is not false", lambda m: node(m, "conv1")["attrs"].update(relu=0), "must be true or false, got 0"),
    ("1.0 is not 1", lambda m: node(m, "conv1")["attrs"].update(stride=1.0), "must be an integer, got 1.0"),
    ("string frac", lambda m: node(m, "t1").update(frac="11"), "must be an integer"),
    ("meta a list", lambda m: m.update(meta=[1]), "meta must be an object"),
    ("meta.model a string", lambda m: m["meta"].update(model="tiny"), "meta.model must be an object"),
    ("unknown attr", lambda m: node(m, "conv1")["attrs"].update(strdie=2), "unknown field.*'strdie'"),
    ("unknown node field", lambda m: node(m, "conv1").update(weights=1), "unknown field"),
    ("numerics", lambda m: m["meta"]["numerics"].update(act_bits=8), "other numerics"),
    # the blob table
    ("overlap", lambda m: m["blobs"][_blob_after(m, "conv1/weight")].update(offset=m["blobs"]["conv1/weight"]["offset"]),
     "overlaps|unaccounted"),
    ("misaligned", lambda m: m["blobs"]["conv1/weight"].update(offset=m["blobs"]["conv1/weight"]["offset"] + 4),
     "not a multiple of 8"),
    ("outside", lambda m: m["blobs"]["fc/bias"].update(offset=10**9), "out of range|outside"),
    ("wrong dtype for role", lambda m: m["blobs"]["fc/bias"].update(dtype="<i2", shape=[20]), "is <i2, the role needs <f4"),
    ("mult dtype", lambda m: m["blobs"]["t1/mult"].update(dtype="|u1", shape=[8]), "is |u1, the role needs <i2"),
    ("used twice", lambda m: node(m, "t2")["blobs"].update(mult="t1/mult"), "used twice"),
    ("unused blob", lambda m: node(m, "fc")["blobs"].pop("bias"), "belong to no node"),
    ("missing blob", lambda m: node(m, "fc")["blobs"].update(bias="nope"), "does not hold"),
    ("nnz count", lambda m: node(m, "t1")["attrs"].update(nnz_groups=1), "t1/codes. has shape"),
    ("format", lambda m: m.update(format="other"), "not \"pesto-artifact\""),
]


@pytest.mark.parametrize("edit,match", [c[1:] for c in MANIFEST_CASES], ids=[c[0] for c in MANIFEST_CASES])
def test_manifest_rules(tiny_bytes, edit, match):
    with pytest.raises(ArtifactError, match=match):
        A.from_bytes(edit_manifest(tiny_bytes, edit))


def test_array_rules(tiny_bytes):
    w = A.from_bytes(tiny_bytes).node("conv1").arrays["weight"].copy()
    w[0, 0, 0, 0] = np.nan
    with pytest.raises(ArtifactError, match="conv1/weight.*NaN or inf"):
        A.from_bytes(set_blob(tiny_bytes, "conv1/weight", w))
    with pytest.raises(ArtifactError, match="fc/bias.*NaN or inf"):
        A.from_bytes(set_blob(tiny_bytes, "fc/bias", np.full(10, np.inf)))
    with pytest.raises(ArtifactError, match="shift 48 exceeds 47"):
        A.from_bytes(set_blob(tiny_bytes, "t1/shift", np.full(4, 48)))
    with pytest.raises(ArtifactError, match="does not fit in 48 bits"):
        A.from_bytes(set_blob(tiny_bytes, "t1/bias", np.full(4, 2**47)))
    with pytest.raises(ArtifactError, match="beyond float32's range"):   # finite weights that overflow
        A.from_bytes(set_blob(tiny_bytes, "fc/weight", np.full((10, 8), 3e38)))
    header, m, blobs = split(tiny_bytes)
    spec = m["blobs"]["fc/bias"]
    padded = blobs[:spec["offset"] + spec["nbytes"]] + b"\x01" + blobs[spec["offset"] + spec["nbytes"] + 1:]
    if spec["nbytes"] % 8:
        with pytest.raises(ArtifactError, match="padding after it is not zero"):
            A.from_bytes(seal(header, m, padded))


def test_json_rules(tiny_bytes):
    header, m, blobs = split(tiny_bytes)
    raw = json.dumps(m)
    for text, match in [(raw.replace('"mean": [0.3]', '"mean": [NaN]'), "NaN, which is not JSON"),
                        (raw.replace('"mean": [0.3]', '"mean": [1e999]'), "not finite"),
                        (raw.replace('"output": "fc"', '"output": "fc", "output": "pool"'), "appears twice"),
                        ("[" * 100000 + "]" * 100000, "not valid JSON|must be an object"),
                        (raw[:-5], "not JSON")]:
        with pytest.raises(ArtifactError, match=match):
            A.from_bytes(seal(header, None, blobs, raw_manifest=text.encode()))
    with pytest.raises(ArtifactError, match="not UTF-8"):
        A.from_bytes(seal(header, None, blobs, raw_manifest=b"\xff\xfe"))
    flagged = (header[0], header[1], header[2], 1) + header[4:]
    with pytest.raises(ArtifactError, match="header flags"):
        A.from_bytes(seal(flagged, m, blobs))


def test_subnet_rules(multi_bytes):
    def stage_mult_dtype(m):
        m["blobs"][node(m, "t1")["subnet_blobs"][1]["mult"]].update(dtype="|u1", shape=[8])
    def host_bias_dtype(m):
        m["blobs"][node(m, "fc")["subnet_blobs"][1]["bias"]].update(dtype="<i2", shape=[20])
    cases = [(stage_mult_dtype, "the role needs <i2"),
             (host_bias_dtype, r"\(bias\) is <i2 \[20\], expected <f4 \[10\]"),
             (lambda m: node(m, "t1")["blobs"].update(mult=node(m, "t1")["subnet_blobs"][0].pop("mult")),
              "unknown field.*'mult'"),
             (lambda m: m.update(format_version=[1, 0]), "manifest says format"),
             (lambda m: node(m, "fc")["subnet_blobs"][1].update(weight="fc/weight"), "expected the same roles")]
    for edit, match in cases:
        with pytest.raises(ArtifactError, match=match):
            A.from_bytes(edit_manifest(multi_bytes, edit))


# -- legal but certainly wrong: `python -m pesto.artifact` exits 1 ----------------------------------

def _with_layer(art, name, **stage):
    nodes = []
    for n in art.nodes:
        n = A.Node(n.name, n.op, list(n.inputs), dict(n.attrs), dict(n.arrays), n.layer, n.frac)
        if n.name == name:
            lay = n.layer
            n.layer = TernaryConv(lay.name, lay.codes, stage.get("mult", lay.mult), stage.get("shift", lay.shift),
                                  stage.get("bias", lay.bias), lay.stride, lay.padding, lay.cg, lay.relu,
                                  lay.f_in, lay.f_out)
        nodes.append(n)
    return A.Artifact(nodes, art.output, dict(art.meta))


def _lint_cli(art, tmp_path, capsys):
    path = A.save(art, tmp_path / "x.pesto")
    rc = A.main([str(path)])
    return rc, capsys.readouterr().err


def test_output_stage_at_the_edge_of_the_range_is_flagged(tmp_path, capsys):
    art = tiny_artifact()
    n = art.node("t1").layer.out_channels
    edge = _with_layer(art, "t1", shift=np.full(n, numerics.SHIFT_MAX), bias=np.full(n, numerics.BIAS_MAX))
    rc, err = _lint_cli(edge, tmp_path, capsys)
    assert rc == 1 and "layer 't1'" in err and "every channel constant" in err and "shift 47" in err
    saturating = _with_layer(art, "t2", shift=np.zeros(8, int), mult=np.full(8, 32767),
                             bias=np.full(8, 2**40))   # saturates every output at +32767
    rc, err = _lint_cli(saturating, tmp_path, capsys)
    assert rc == 1 and "layer 't2'" in err and "gives 32767 for every input" in err
    rc, _ = _lint_cli(art, tmp_path, capsys)
    assert rc == 0


def test_blown_up_normalisation_and_zero_classifier_are_flagged(tmp_path, capsys):
    art = tiny_artifact()
    art.meta["input"]["std"] = [1e-6]
    rc, err = _lint_cli(art, tmp_path, capsys)
    assert rc == 1 and "not a pixel normalisation" in err
    art = tiny_artifact()
    art.node("fc").arrays["weight"][:] = 0
    rc, err = _lint_cli(art, tmp_path, capsys)
    assert rc == 1 and "node 'fc' (linear): all weights are zero" in err


def test_cli_usage(capsys):
    assert A.main([]) == 2 and "usage" in capsys.readouterr().err


# -- only regular files, magic before reading, memory bounded by the file size ---------------------

def _load_in_subprocess(path, limit_mb: int | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    code = textwrap.dedent(f"""
        import resource, sys
        if {limit_mb!r}:
            resource.setrlimit(resource.RLIMIT_AS, ({limit_mb!r} << 20, {limit_mb!r} << 20))
        from pesto import artifact
        from pesto.errors import ArtifactError
        try:
            a = artifact.load({str(path)!r})
        except ArtifactError as e:
            print("REFUSED", e)
        else:
            print("LOADED", len(a.nodes))
        print("PEAK_MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
        """)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env)


def test_only_regular_files_are_read(tmp_path):
    fifo = tmp_path / "pipe.pesto"
    os.mkfifo(fifo)
    r = _load_in_subprocess(fifo, timeout=30)   # would block forever on open() or read()
    assert "REFUSED" in r.stdout and "is a FIFO" in r.stdout, r.stdout + r.stderr
    with pytest.raises(ArtifactError, match="is a device"):
        A.load("/dev/zero")
    with pytest.raises(ArtifactError, match="is a folder"):
        A.load(tmp_path)


def test_magic_and_size_are_checked_before_reading(tmp_path, tiny_bytes):
    sparse = tmp_path / "sparse.pesto"
    with open(sparse, "wb") as f:
        f.truncate(8 << 30)                       # 8 GiB of zeros, no disk used
    big = tmp_path / "big.pesto"
    with open(big, "wb") as f:
        f.write(tiny_bytes[:A.HEADER.size])
        f.truncate(8 << 30)
    lying = tmp_path / "lying.pesto"
    lying.write_bytes(tiny_bytes[:A.HEADER.size] + b"\0" * 100)
    for path, message in [(sparse, "not a pesto artifact"), (big, "more than an artifact may hold"),
                          (lying, "do not add up to the file size")]:
        r = _load_in_subprocess(path, limit_mb=400, timeout=30)
        assert "REFUSED" in r.stdout and message in r.stdout, r.stdout + r.stderr


def _zero_layer_artifact(n: int, layers: int = 1):
    """input -> conv -> quantize -> `layers` all-zero tconvs of n channels side by side (summed by
    residual adds) -> dequantize -> pool -> linear."""
    f32 = np.float32
    nodes = [A.Node("input", "input", attrs={"shape": [1, 4, 4]}),
             A.Node("conv", "conv", ["input"], {"stride": 1, "padding": 1, "relu": False},
                    {"weight": np.ones((4, 1, 3, 3), f32), "bias": np.zeros(4, f32)}),
             A.Node("q", "quantize", ["conv"], frac=8)]
    prev = None
    for i in range(layers):
        lay = TernaryConv(f"t{i}", np.zeros((n, 4, 3, 3), np.int8), np.ones(n, int), np.zeros(n, int),
                          np.zeros(n, int), padding=1, cg=4, f_in=8, f_out=8)
        nodes.append(A.Node(lay.name, "tconv", ["q"], layer=lay, frac=8))
        if prev is not None:
            nodes.append(A.Node(f"add{i}", "add", [prev, lay.name], frac=8))
        prev = nodes[-1].name
    nodes += [A.Node("dq", "dequantize", [prev]), A.Node("pool", "avgpool", ["dq"], {"kernel": None, "stride": None}),
              A.Node("flat", "flatten", ["pool"]),
              A.Node("fc", "linear", ["flat"], {"relu": False}, {"weight": np.ones((10, n), f32), "bias": np.zeros(10, f32)})]
    return A.Artifact(nodes, "fc", {"num_classes": 10, "input": {"shape": [1, 4, 4], "mean": [0.0], "std": [1.0]}})


def test_memory_is_bounded_by_the_file_size(tmp_path):
    """An all-zero layer stores 1 bit per group and 11 bytes per channel; a Cg of 65536 makes each
    group 589,824 codes. The 40 KB file below declares 600 M codes (GBs once unpacked): it must be
    refused from its manifest, before anything is allocated, under a 500 MB address-space limit."""
    data = A.to_bytes(_zero_layer_artifact(1000))
    bomb = edit_manifest(data, lambda m: node(m, "t0")["attrs"].update(cg=65536))
    path = tmp_path / "bomb.pesto"
    path.write_bytes(bomb)
    assert len(bomb) < 60_000
    r = _load_in_subprocess(path, limit_mb=500)
    assert "REFUSED" in r.stdout and "refused before allocating them" in r.stdout, r.stdout + r.stderr
    assert "MemoryError" not in r.stdout
    ok = tmp_path / "ok.pesto"
    ok.write_bytes(data)
    r = _load_in_subprocess(ok, limit_mb=500)
    assert "LOADED" in r.stdout, r.stdout + r.stderr


def test_the_bound_is_a_total_over_layers():
    """Three layers, each below the bound, together above it, are refused as well."""
    n = 100
    per_layer = n * 65536 * 9            # codes of one layer once its Cg is 65536
    assert per_layer < A.rules.LOAD_BASE < 3 * per_layer

    def widen(m):
        for i in range(3):
            node(m, f"t{i}")["attrs"].update(cg=65536)
    with pytest.raises(ArtifactError, match="refused before allocating"):
        A.from_bytes(edit_manifest(A.to_bytes(_zero_layer_artifact(n, layers=3)), widen))


# -- the fuzz test ---------------------------------------------------------------------------------

def _locations(obj, path=()):
    yield path
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _locations(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _locations(v, path + (i,))


def _get(obj, path):
    for p in path:
        obj = obj[p]
    return obj


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(-1e40, 1e40) |
                    st.text(max_size=6) | st.sampled_from([0, 1, -1, 2, 3, 47, 48, 2**15, 2**31, 2**63, 65536]),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                    max_leaves=6)


def _mutate(data: bytes, draw) -> bytes:
    header, m, blobs = split(data)
    blobs = bytearray(blobs)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["replace", "nudge", "nudge", "delete", "copy", "blob"]))
        if kind == "blob" and blobs:
            pos = draw(st.integers(0, len(blobs) - 1))
            blobs[pos] = draw(st.integers(0, 255))
            continue
        locs = [p for p in _locations(m) if p]
        path = draw(st.sampled_from(locs))
        parent, key = _get(m, path[:-1]), path[-1]
        value = parent[key]
        if kind == "nudge" and type(value) is int:
            parent[key] = value + draw(st.sampled_from([-2, -1, 1, 2, 8, value, -value]))
        elif kind == "delete":
            del parent[key]
        elif kind == "copy" and isinstance(parent, list):
            parent.insert(key, json.loads(json.dumps(value)))
        elif kind == "copy" and isinstance(parent, dict):
            parent[draw(st.sampled_from(list(parent)))] = json.loads(json.dumps(value))
        else:
            parent[key] = draw(JSON)
    return seal(header, m, bytes(blobs))


@settings(max_examples=250, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), which=st.sampled_from(["tiny", "multi"]))
def test_fuzz_a_mutated_artifact_is_refused_or_runs(tiny_bytes, multi_bytes, data, which):
    """Structure-aware mutations (values replaced or nudged, keys deleted or copied, blob bytes
    overwritten) with the checksum recomputed: the loader raises ArtifactError, or the artifact
    runs through the reference with finite logits of shape (batch, classes)."""
    mutated = _mutate(tiny_bytes if which == "tiny" else multi_bytes, data.draw)
    try:
        art = A.from_bytes(mutated)
    except ArtifactError:
        return
    A.lint(art)
    x = np.random.default_rng(1).integers(0, 256, (2, *art.input_shape), dtype=np.uint8)
    for k in range(art.num_subnets):
        logits = reference.run(art, x, subnet=k if art.num_subnets > 1 else None)
        assert logits.shape == (2, art.num_classes) and logits.dtype == np.float32
        assert np.isfinite(logits).all()
