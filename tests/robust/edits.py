"""Edits of an artifact file that keep its checksum valid, so they reach the structure checks."""

from __future__ import annotations

import json

import numpy as np

from pesto import artifact as A


def split(data: bytes) -> tuple[tuple, dict, bytes]:
    header = A.HEADER.unpack_from(data)
    mlen = header[4]
    manifest = json.loads(data[A.HEADER.size:A.HEADER.size + mlen])
    return header, manifest, data[A.HEADER.size + mlen:-A.DIGEST_BYTES]


def seal(header: tuple, manifest, blobs: bytes, raw_manifest: bytes | None = None) -> bytes:
    _, major, minor, flags, _, _ = header
    m = raw_manifest if raw_manifest is not None else json.dumps(manifest).encode()
    m += b" " * ((-len(m)) % 8)
    body = A.HEADER.pack(A.MAGIC, major, minor, flags, len(m), len(blobs)) + m + blobs
    return body + bytes.fromhex(A.sha256(body))


def edit_manifest(data: bytes, edit) -> bytes:
    header, manifest, blobs = split(data)
    edit(manifest)
    return seal(header, manifest, blobs)


def node(manifest: dict, name: str) -> dict:
    return next(n for n in manifest["nodes"] if n["name"] == name)


def set_blob(data: bytes, name: str, values) -> bytes:
    """Overwrite blob ``name``'s bytes with ``values`` (same size), checksum recomputed."""
    header, manifest, blobs = split(data)
    spec = manifest["blobs"][name]
    raw = np.asarray(values, dtype=spec["dtype"]).tobytes()
    assert len(raw) == spec["nbytes"]
    blobs = blobs[:spec["offset"]] + raw + blobs[spec["offset"] + len(raw):]
    return seal(header, manifest, blobs)
