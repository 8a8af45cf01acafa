"""What users hand to pesto, checked in one place (numpy only; docs/robustness.md).

* argparse argument types for every `pesto` subcommand: a value of the wrong type or out of
  range is a usage error (argparse prints the usage line, the CLI exits 2)::

      p.add_argument("--lanes", type=positive_int)
      p.add_argument("--lr", type=finite_float(0, lo_open=True))
      p.add_argument("--data-root", type=data_folder)

* the same checks for Python callers (``check_int``, ``check_float``): ConfigError;
* ``unit_images``: the one rule for image batches at the API boundary (the driver, the
  reference, export calibration): uint8 pixels, other integers holding pixels 0..255, or
  floats in [0, 1]; anything else (NaN, inf, out of range, wrong shape, empty) is refused.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import numpy as np

from .errors import ConfigError

PIXEL_MAX = 255


# -- Python-level checks (ConfigError) --------------------------------------------------------

def _bounds(lo, hi, lo_open=False, hi_open=False) -> str:
    def show(v):
        return str(v) if isinstance(v, int) else f"{v:g}"
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {show(lo)}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {show(hi)}")
    return " and ".join(parts)


def check_int(value, name: str, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as an int within [lo, hi]; bools and non-integral numbers are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and math.isfinite(value) and value == int(value):
            value = int(value)
        else:
            raise ConfigError(f"{name} must be an integer{' ' + _bounds(lo, hi) if lo is not None or hi is not None else ''}"
                              f", got {value!r}")
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{name} must be an integer {_bounds(lo, hi)}, got {value}")
    return value


def check_float(value, name: str, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False, hi_open: bool = False) -> float:
    """``value`` as a finite float within the bounds (NaN and inf are always refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    v = float(value)
    bad = (not math.isfinite(v) or (lo is not None and (v <= lo if lo_open else v < lo))
           or (hi is not None and (v >= hi if hi_open else v > hi)))
    if bad:
        rule = _bounds(lo, hi, lo_open, hi_open)
        raise ConfigError(f"{name} must be a finite number{' ' + rule if rule else ''}, got {value!r}")
    return v


def check_options(cls, d: dict, what: str) -> dict:
    """``d`` unchanged when every key is a field of dataclass ``cls``; else a ConfigError that
    lists the unknown and the known ``what`` options."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ConfigError(f"unknown {what} options {sorted(unknown)}; known: {sorted(names)}")
    return d


def check_device(name: str) -> str:
    """A torch device this machine has: "cpu", "cuda" or "cuda:N" (imports torch)."""
    import torch
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError, TypeError) as e:
        raise ConfigError(f"device {name!r} is not a torch device (cpu, cuda, cuda:1): {e}") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not count:
            raise ConfigError(f"device {name!r}: this machine has no CUDA device torch can use; use --device cpu")
        if dev.index is not None and dev.index >= count:
            raise ConfigError(f"device {name!r}: this machine has {count} CUDA device(s), 0..{count - 1}")
    elif dev.type != "cpu":
        raise ConfigError(f"device {name!r}: pesto trains on cpu or cuda")
    return name


# -- argparse types (usage errors) --------------------------------------------------------------

def _argtype(fn, name: str):
    fn.__name__ = name
    return fn


def int_range(lo: int | None = None, hi: int | None = None):
    """An argparse type: an integer within [lo, hi]."""
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer{' ' + _bounds(lo, hi) if lo is not None or hi is not None else ''}, "
                                             f"got {text!r}") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"expected an integer {_bounds(lo, hi)}, got {value}")
        return value
    return _argtype(parse, "integer")


positive_int = int_range(1)
nonnegative_int = int_range(0)
seed_int = int_range(0, 2**31 - 1)


def finite_float(lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False):
    """An argparse type: a finite float within the bounds (nan and inf refused)."""
    def parse(text: str) -> float:
        try:
            return check_float(float(text), "value", lo, hi, lo_open, hi_open)
        except ValueError:   # float() and ConfigError (a ValueError) alike
            rule = _bounds(lo, hi, lo_open, hi_open)
            raise argparse.ArgumentTypeError(f"expected a finite number{' ' + rule if rule else ''}, "
                                             f"got {text!r}") from None
    return _argtype(parse, "number")


positive_float = finite_float(0.0, lo_open=True)
nonnegative_float = finite_float(0.0)


def existing_file(text: str) -> Path:
    """An argparse type: the path of an existing regular file."""
    p = Path(text)
    if not p.exists():
        raise argparse.ArgumentTypeError(f"{text!r} does not exist")
    if not p.is_file():
        raise argparse.ArgumentTypeError(f"{text!r} is not a regular file")
    return p


existing_file.__name__ = "file"


def data_folder(text: str) -> Path:
    """An argparse type: an existing, non-empty folder (a data root never falls back elsewhere)."""
    p = Path(text)
    if not p.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not a folder" if p.exists() else f"{text!r} does not exist")
    if not any(p.iterdir()):
        raise argparse.ArgumentTypeError(f"{text!r} is empty")
    return p


data_folder.__name__ = "folder"


def output_file(text: str) -> Path:
    """An argparse type: where a file will be written (not an existing folder)."""
    p = Path(text)
    if p.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; give a file name")
    if p.exists() and not p.is_file():
        raise argparse.ArgumentTypeError(f"{text!r} is not a regular file")
    return p


output_file.__name__ = "file"


def output_folder(text: str) -> Path:
    """An argparse type: a folder that will be written into (not an existing file)."""
    p = Path(text)
    if p.exists() and not p.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a file; give a folder")
    return p


output_folder.__name__ = "folder"


# -- image batches ----------------------------------------------------------------------------

def unit_images(images, where: str = "images", channels: int | None = None,
                hw: tuple[int, int] | None = None) -> np.ndarray:
    """Raw images -> float32 (B, C, H, W) in [0, 1], or a ConfigError saying what was expected.

    Accepted: uint8 pixels (0..255); any other integer dtype holding pixels 0..255 (scaled the
    same way as uint8); floats in [0, 1] (pixel / 255, what ToTensor gives). (C, H, W) is one
    image. Refused: other dtypes, NaN or inf, values outside those ranges, an empty batch, a
    wrong rank, channel count or size.
    """
    want = (f"(batch, {channels}, {hw[0]}, {hw[1]})" if channels is not None and hw is not None
            else "(batch, C, H, W)")
    rule = f"{where} must be {want} uint8 pixels 0..255 or floats in [0, 1] (pixel / 255)"
    try:
        x = np.asarray(images)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{rule}; got something that is not an array ({e})") from None
    if x.dtype == bool or not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise ConfigError(f"{rule}; got dtype {x.dtype}")
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ConfigError(f"{rule}; got shape {x.shape}")
    if x.shape[0] == 0:
        raise ConfigError(f"{rule}; got an empty batch {x.shape}")
    if (channels is not None and x.shape[1] != channels) or (hw is not None and tuple(x.shape[2:]) != tuple(hw)):
        raise ConfigError(f"{rule}; got shape {x.shape}")
    if x.size == 0:
        raise ConfigError(f"{rule}; got an empty image {x.shape}")
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(PIXEL_MAX)
    lo, hi = x.min(), x.max()
    if np.issubdtype(x.dtype, np.integer):
        if lo < 0 or hi > PIXEL_MAX:
            raise ConfigError(f"{rule}; got {x.dtype} values in [{lo}, {hi}]")
        return x.astype(np.float32) / np.float32(PIXEL_MAX)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        bad = "NaN" if np.isnan(x).any() else "inf"
        raise ConfigError(f"{rule}; got {bad} values")
    if lo < 0 or hi > 1:
        hint = " (0..255 pixels: pass them as uint8, or divide by 255)" if hi > 1 and lo >= 0 else ""
        raise ConfigError(f"{rule}; got float values in [{lo:g}, {hi:g}]{hint}")
    return x.astype(np.float32)
