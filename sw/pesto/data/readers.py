"""File-format readers: gzipped IDX (MNIST family) and the CIFAR-10 python pickles.

Both are parsed without trusting the file: IDX by its magic number and sizes, CIFAR's pickles
with an unpickler that only builds numpy arrays (no arbitrary code on load).
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
from pathlib import Path

import numpy as np

from ..errors import DatasetError

# IDX type codes (third byte of the magic) -> numpy dtype (big endian)
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _open_maybe_gz(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DatasetError(f"{path}: corrupt gzip file ({e}); re-install the dataset") from e
    return raw


def read_idx(path: str | os.PathLike, ndim: int | None = None) -> np.ndarray:
    """Parse an IDX file (optionally gzipped): magic 0x0000TTDD, DD big-endian int32 sizes, data."""
    path = Path(path)
    data = _open_maybe_gz(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise DatasetError(f"{path}: not an IDX file (bad magic {data[:4].hex()})")
    dims = data[3]
    if ndim is not None and dims != ndim:
        raise DatasetError(f"{path}: expected an IDX file with {ndim} dimensions, found {dims}")
    header = 4 + 4 * dims
    if len(data) < header:
        raise DatasetError(f"{path}: truncated IDX header")
    shape = tuple(int(v) for v in np.frombuffer(data, ">i4", dims, 4))
    dtype = np.dtype(IDX_TYPES[data[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise DatasetError(f"{path}: IDX size mismatch: header says {shape} ({expected} bytes), "
                           f"file has {len(data)} bytes (truncated or corrupt)")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


FMNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def read_fashion_mnist(folder: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 1, 28, 28), labels int64 (N,)) of one split."""
    folder = Path(folder)
    img_stem, lbl_stem = FMNIST_FILES[split]
    img_path, lbl_path = _find(folder, img_stem), _find(folder, lbl_stem)
    if img_path is None or lbl_path is None:
        raise DatasetError(f"{folder}: missing {img_stem}[.gz] or {lbl_stem}[.gz]")
    images = read_idx(img_path, 3)
    labels = read_idx(lbl_path, 1)
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise DatasetError(f"{folder}: Fashion-MNIST images and labels must be unsigned bytes")
    if len(images) != len(labels):
        raise DatasetError(f"{folder}: {len(images)} images but {len(labels)} labels in the {split} split")
    if labels.size and labels.max() > 9:
        raise DatasetError(f"{img_path}: label {labels.max()} out of range 0..9")
    return images[:, None].copy(), labels.astype(np.int64)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Builds plain containers, bytes and numpy arrays, nothing else."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")
        import codecs
        import numpy._core.multiarray as ma
        # _codecs.encode: how Python 3 pickles bytes at protocol 2 (str -> bytes, no side effects)
        return {"_reconstruct": ma._reconstruct, "ndarray": np.ndarray, "dtype": np.dtype,
                "scalar": ma.scalar, "encode": codecs.encode}[name]


def safe_unpickle(data: bytes):
    """Unpickle data that may only hold dicts, lists, strings, numbers and numpy arrays."""
    return _NumpyOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()


CIFAR_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def read_cifar10(folder: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 3, 32, 32), labels int64 (N,)) from a cifar-10-batches-py folder."""
    folder = Path(folder)
    xs, ys = [], []
    for name in CIFAR_FILES[split]:
        path = folder / name
        if not path.is_file():
            raise DatasetError(f"{folder}: missing {name} (expected the cifar-10-batches-py layout)")
        try:
            batch = safe_unpickle(path.read_bytes())
        except Exception as e:
            raise DatasetError(f"{path}: not a CIFAR-10 batch file ({e})") from e
        if not isinstance(batch, dict):
            raise DatasetError(f"{path}: not a CIFAR-10 batch file (no dict inside)")
        batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
        x, y = batch.get("data"), batch.get("labels")
        if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[1] != 3 * 32 * 32 or y is None:
            raise DatasetError(f"{path}: expected 'data' (N, 3072) uint8 and 'labels', got "
                               f"{getattr(x, 'shape', None)}")
        y = np.asarray(y, dtype=np.int64)
        if len(y) != len(x) or (y.size and (y.min() < 0 or y.max() > 9)):
            raise DatasetError(f"{path}: labels do not match the images (count or range 0..9)")
        xs.append(x.astype(np.uint8).reshape(-1, 3, 32, 32))
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)
