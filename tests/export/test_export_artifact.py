"""The artifact format: packing round trips, save/load, and integrity checks on damaged files."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pesto import artifact as A
from pesto import geometry
from pesto.errors import ArtifactError
from pesto.ir import TernaryConv
from pesto.reference.network import run


def random_codes(rng, n, c, k, cg, group_sparsity, in_sparsity):
    """Ternary codes with whole zero PE groups (group_sparsity) and scattered zeros inside groups."""
    codes = rng.choice(np.array([-1, 1], dtype=np.int8), size=(n, c, k, k))
    codes[rng.random((n, c, k, k)) < in_sparsity] = 0
    g = geometry.num_groups(c, cg)
    dead = rng.random((n, g)) < group_sparsity
    codes[np.repeat(dead, cg, axis=1)[:, :c]] = 0
    return codes


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 9), c=st.integers(1, 40), k=st.sampled_from([1, 3]), cg=st.integers(1, 20),
       gs=st.floats(0, 1), ins=st.floats(0, 1), seed=st.integers(0, 2**31))
def test_pack_unpack_round_trip(n, c, k, cg, gs, ins, seed):
    codes = random_codes(np.random.default_rng(seed), n, c, k, cg, gs, ins)
    indexer, packed = A.pack_codes(codes, cg)
    expect_idx = geometry.group_indexer(codes, cg)
    nnz = int(expect_idx.sum())
    # only the non-zero groups are stored: 2 bits per code, one bit per group
    assert packed.size == math.ceil(nnz * cg * k * k / 4)
    assert indexer.size == math.ceil(n * geometry.num_groups(c, cg) / 8)
    assert np.array_equal(np.unpackbits(indexer, bitorder="little")[:expect_idx.size].astype(bool),
                          expect_idx.reshape(-1))
    back = A.unpack_codes(indexer, packed, codes.shape, cg)
    assert back.dtype == np.int8 and np.array_equal(back, codes)


def test_code_encoding_is_the_stream_encoding():
    # +1 -> 01, -1 -> 11, 0 -> 00, first code in the low bits (the weight packet's encoding)
    codes = np.array([1, -1, 0, 1, 0, 0, 0, -1], dtype=np.int8).reshape(1, 8, 1, 1)
    _, packed = A.pack_codes(codes, 8)
    assert packed.tolist() == [0b01_00_11_01, 0b11_00_00_00]


def test_channels_not_divisible_by_cg_are_zero_padded():
    rng = np.random.default_rng(1)
    codes = random_codes(rng, 4, 20, 3, 16, 0.0, 0.0)   # 20 channels -> 2 groups, 12 padded channels
    indexer, packed = A.pack_codes(codes, 16)
    assert packed.size == 4 * 2 * 16 * 9 // 4          # padded groups are stored whole
    raw = A._unpack2(packed, packed.size * 4).reshape(4, 2, 16, 9)
    assert not raw[:, 1, 4:].any()                        # channels 20..31: code 0
    assert np.array_equal(A.unpack_codes(indexer, packed, codes.shape, 16), codes)


def test_unpack_refuses_inconsistent_blobs():
    codes = np.zeros((2, 16, 3, 3), dtype=np.int8)
    codes[0, 0, 0, 0] = 1
    indexer, packed = A.pack_codes(codes, 16)
    with pytest.raises(ArtifactError, match="reserved"):
        A.unpack_codes(indexer, np.full_like(packed, 0b10), codes.shape, 16)
    with pytest.raises(ArtifactError, match="all zero"):
        A.unpack_codes(indexer, np.zeros_like(packed), codes.shape, 16)
    with pytest.raises(ArtifactError, match="need"):
        A.unpack_codes(np.array([3], np.uint8), packed, codes.shape, 16)


def test_save_load_round_trip(resnet20_artifact, tmp_path, fmnist):
    path = A.save(resnet20_artifact, tmp_path / "r20.pesto")
    back = A.load(path)
    assert [n.name for n in back.nodes] == [n.name for n in resnet20_artifact.nodes]
    for a, b in zip(resnet20_artifact.layers, back.layers):
        assert isinstance(b, TernaryConv)
        for f in ("codes", "mult", "shift", "bias"):
            assert np.array_equal(getattr(a, f), getattr(b, f)), (a.name, f)
        assert (a.stride, a.padding, a.cg, a.relu, a.f_in, a.f_out) == (b.stride, b.padding, b.cg, b.relu, b.f_in, b.f_out)
    for a, b in zip(resnet20_artifact.host_nodes, back.host_nodes):
        for key in a.arrays:
            assert np.array_equal(a.arrays[key], b.arrays[key])
    x = fmnist[1][:4]
    assert np.array_equal(run(resnet20_artifact, x), run(back, x))
    assert back.num_classes == 10 and back.input_shape == (1, 28, 28)
    # the file is numpy-only data: no pickle protocol marker anywhere in the manifest
    manifest = path.read_bytes()[A.HEADER.size:A.HEADER.size + A.HEADER.unpack_from(path.read_bytes())[4]]
    assert json.loads(manifest)["format_version"] == list(A.FORMAT_VERSION)


def test_artifact_size_matches_eq_2_8(resnet20_artifact, tmp_path):
    """The codes take exactly eq 2.8's size; indexers, output stages, host layers and the manifest
    are the overhead on top."""
    t = resnet20_artifact.totals()
    eq28_bytes = t["weights"] * 32 / t["compression"] / 8
    # padded channels aside (none in ResNet-20 at Cg=16), the stored codes are eq 2.8's bits
    assert t["code_bytes"] == pytest.approx(eq28_bytes, abs=len(resnet20_artifact.layers))
    size = A.save(resnet20_artifact, tmp_path / "a.pesto").stat().st_size
    host = sum(a.nbytes for n in resnet20_artifact.host_nodes for a in n.arrays.values())
    stages = sum(14 * l.out_channels for l in resnet20_artifact.layers)   # int16 + u8 + int64 per channel
    assert t["code_bytes"] + t["indexer_bytes"] + host + stages < size < \
        t["code_bytes"] + t["indexer_bytes"] + host + stages + 64 * 1024


@pytest.fixture(scope="module")
def artifact_bytes(resnet20_artifact):
    return A.to_bytes(resnet20_artifact)


def test_truncated_file(artifact_bytes, tmp_path):
    for cut in (0, 5, 40, len(artifact_bytes) // 2, len(artifact_bytes) - 1):
        p = tmp_path / f"t{cut}.pesto"
        p.write_bytes(artifact_bytes[:cut])
        with pytest.raises(ArtifactError, match="truncated|corrupt|not a pesto"):
            A.load(p)


def test_bit_flip_is_found_by_the_checksum(artifact_bytes):
    for pos in (10, 100, len(artifact_bytes) // 2, len(artifact_bytes) - 40):
        data = bytearray(artifact_bytes)
        data[pos] ^= 0x10
        with pytest.raises(ArtifactError, match="checksum"):
            A.from_bytes(bytes(data))


def _reseal(data: bytes) -> bytes:
    body = data[:-A.DIGEST_BYTES]
    return body + bytes.fromhex(A.sha256(body))


def test_newer_format_version_is_refused(artifact_bytes):
    data = bytearray(artifact_bytes)
    struct.pack_into("<H", data, 8, A.FORMAT_VERSION[0] + 1)
    with pytest.raises(ArtifactError, match="newer.*upgrade pesto"):
        A.from_bytes(_reseal(bytes(data)))
    # a newer minor version of the same major is readable (additive changes only: its unknown
    # fields are ignored), when its header and manifest agree on it
    newer = [A.FORMAT_VERSION[0], A.FORMAT_VERSION[1] + 1]
    mlen = A.HEADER.unpack_from(artifact_bytes)[4]
    m = json.loads(artifact_bytes[A.HEADER.size:A.HEADER.size + mlen])
    m.update(format_version=newer, future_field={"added": "in a later minor"})
    mb = json.dumps(m).encode()
    mb += b" " * ((-len(mb)) % 8)
    blobs = artifact_bytes[A.HEADER.size + mlen:-A.DIGEST_BYTES]
    body = A.HEADER.pack(A.MAGIC, *newer, 0, len(mb), len(blobs)) + mb + blobs
    assert A.from_bytes(body + bytes.fromhex(A.sha256(body))).layers
    struct.pack_into("<HH", data, 8, *newer)   # the header alone says newer: inconsistent
    with pytest.raises(ArtifactError, match="manifest says format"):
        A.from_bytes(_reseal(bytes(data)))


def test_not_an_artifact(tmp_path):
    p = tmp_path / "x.pesto"
    p.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(ArtifactError, match="not a pesto artifact"):
        A.load(p)
    with pytest.raises(ArtifactError, match="cannot read"):
        A.load(tmp_path / "missing.pesto")


def test_malformed_manifest_with_valid_checksum(artifact_bytes):
    """A checksum-valid file whose content is wrong (a buggy writer) is still an ArtifactError."""
    mlen = A.HEADER.unpack_from(artifact_bytes)[4]
    start = A.HEADER.size
    manifest = json.loads(artifact_bytes[start:start + mlen])
    edits = [
        lambda m: m["nodes"][3].update(op="softmax"),
        lambda m: m["nodes"][3].update(inputs=["nowhere"]),
        lambda m: next(n for n in m["nodes"] if n["op"] == "tconv")["attrs"].update(nnz_groups=1),
        lambda m: next(n for n in m["nodes"] if n["op"] == "tconv")["attrs"].update(shape=[1, 2]),
        lambda m: next(n for n in m["nodes"] if n["op"] == "tconv")["attrs"].update(f_in=3),
        lambda m: next(iter(m["blobs"].values())).update(offset=10**9),
        lambda m: next(iter(m["blobs"].values())).update(dtype="O"),
        lambda m: m.pop("nodes"),
        lambda m: next(n for n in m["nodes"] if n["op"] == "tconv")["attrs"].update(cg=10**12),
        lambda m: m.update(meta=None, output=5),
    ]
    for edit in edits:
        m = json.loads(json.dumps(manifest))
        edit(m)
        mb = json.dumps(m).encode()
        mb += b" " * ((-len(mb)) % 8)
        _, major, minor, flags, _, blen = A.HEADER.unpack_from(artifact_bytes)
        body = A.HEADER.pack(A.MAGIC, major, minor, flags, len(mb), blen) + mb + \
            artifact_bytes[start + mlen:-A.DIGEST_BYTES]
        with pytest.raises(ArtifactError):
            A.from_bytes(_reseal(body))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_loader_only_ever_raises_artifact_error(artifact_bytes, data):
    """Random damage of every kind (flips, overwrites, cuts, insertions), resealed or not."""
    buf = bytearray(artifact_bytes)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "write", "cut", "insert"]))
        pos = data.draw(st.integers(0, max(len(buf) - 1, 0)))
        if kind == "flip" and buf:
            buf[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "write":
            chunk = data.draw(st.binary(min_size=1, max_size=16))
            buf[pos:pos + len(chunk)] = chunk
        elif kind == "cut":
            del buf[pos:pos + data.draw(st.integers(1, 4096))]
        else:
            buf[pos:pos] = data.draw(st.binary(min_size=1, max_size=16))
    blob = bytes(buf)
    if blob == artifact_bytes:
        return
    if not (data.draw(st.booleans()) and len(blob) > A.DIGEST_BYTES):
        with pytest.raises(ArtifactError):   # plain damage: always found
            A.from_bytes(blob)
        return
    blob = _reseal(blob)   # damage the checksum cannot see: the parser must still cope
    try:
        art = A.from_bytes(blob)
    except ArtifactError:
        return
    # loading succeeded: only possible when the checksum was resealed over a harmless change
    # (e.g. a character of a free-text field), and then the result is a consistent artifact
    assert blob[-A.DIGEST_BYTES:] == bytes.fromhex(A.sha256(blob[:-A.DIGEST_BYTES]))
    art.validate()


def test_save_is_atomic(resnet20_artifact, tmp_path, monkeypatch):
    path = tmp_path / "a.pesto"
    A.save(resnet20_artifact, path)
    before = path.read_bytes()
    import os

    def crash(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        A.save(resnet20_artifact, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.pesto"]   # no temporary file left behind


def test_board_side_needs_no_torch(resnet20_artifact, tmp_path, fmnist):
    """Loading and running an artifact imports numpy only (the PYNQ board has no torch)."""
    import subprocess
    import sys
    path = A.save(resnet20_artifact, tmp_path / "a.pesto")
    np.save(tmp_path / "x.npy", fmnist[1][:2])
    code = ("import sys, numpy as np; from pesto import artifact; from pesto.reference.network import run; "
            f"a = artifact.load({str(path)!r}); y = run(a, np.load({str(tmp_path / 'x.npy')!r})); "
            "assert y.shape == (2, 10); assert 'torch' not in sys.modules, 'torch was imported'; "
            f"np.save({str(tmp_path / 'y.npy')!r}, y)")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert np.array_equal(np.load(tmp_path / "y.npy"), run(resnet20_artifact, fmnist[1][:2]))


def test_inspect_command(resnet20_artifact, tmp_path, capsys):
    good = A.save(resnet20_artifact, tmp_path / "a.pesto")
    bad = tmp_path / "b.pesto"
    bad.write_bytes(good.read_bytes()[:-1])
    assert A.main([str(good)]) == 0
    out = capsys.readouterr().out
    assert "18 accelerated layers" in out and "layer3.2.conv2" in out and "total (18 layers)" in out
    assert A.main([str(bad)]) == 1
    assert "truncated or corrupt" in capsys.readouterr().err
