"""The integer layer every part of pesto agrees on: one accelerated ternary convolution.

The exporter produces it (from a trained model), the artifact stores it, the integer reference
runs it, the stream protocol packs it for the RTL and the HLS engine. numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import geometry, numerics
from .errors import ConfigError

SUPPORTED_KERNELS = ((1, 1), (3, 3))
SUPPORTED_STRIDES = (1, 2)


def conv_out_size(size: int, k: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - k) // stride + 1


@dataclass
class TernaryConv:
    """y = output_stage(conv(x, codes)) with int16 x, ternary codes, int32 accumulation.

    codes: int8 (N, C, Kh, Kw) in {-1, 0, +1}; mult/shift/bias: int64 (N,); relu: apply ReLU;
    f_in / f_out: frac bits of the input and output activations (numerics.py).
    """

    name: str
    codes: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    bias: np.ndarray
    stride: int = 1
    padding: int = 0
    cg: int = 16
    relu: bool = False
    f_in: int = 8
    f_out: int = 8
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.codes = np.asarray(self.codes, dtype=np.int8)
        n = self.codes.shape[0] if self.codes.ndim == 4 else -1
        self.mult = np.asarray(self.mult, dtype=np.int64).reshape(-1)
        self.shift = np.asarray(self.shift, dtype=np.int64).reshape(-1)
        self.bias = np.asarray(self.bias, dtype=np.int64).reshape(-1)
        self.validate()

    # -- geometry -------------------------------------------------------------------------
    @property
    def out_channels(self) -> int:
        return self.codes.shape[0]

    @property
    def in_channels(self) -> int:
        return self.codes.shape[1]

    @property
    def kernel(self) -> tuple[int, int]:
        return self.codes.shape[2], self.codes.shape[3]

    @property
    def groups(self) -> int:
        """G: PE groups per output channel."""
        return geometry.num_groups(self.in_channels, self.cg)

    @property
    def indexer(self) -> np.ndarray:
        """bool (N, G): which groups hold a non-zero code."""
        return geometry.group_indexer(self.codes, self.cg)

    @property
    def nnz_groups(self) -> int:
        return int(self.indexer.sum())

    def out_hw(self, h: int, w: int) -> tuple[int, int]:
        kh, kw = self.kernel
        return conv_out_size(h, kh, self.stride, self.padding), conv_out_size(w, kw, self.stride, self.padding)

    def dense_macs(self, h: int, w: int) -> int:
        """MACs of the equivalent dense layer on an h x w input (GOPS counts 2 per MAC)."""
        ho, wo = self.out_hw(h, w)
        kh, kw = self.kernel
        return self.out_channels * self.in_channels * kh * kw * ho * wo

    # -- checks ---------------------------------------------------------------------------
    def validate(self) -> None:
        where = f"layer {self.name!r}"
        if self.codes.ndim != 4:
            raise ConfigError(f"{where}: codes must be (N, C, Kh, Kw), got shape {self.codes.shape}")
        if not np.isin(self.codes, (-1, 0, 1)).all():
            raise ConfigError(f"{where}: codes must be ternary (-1, 0, +1)")
        if self.kernel not in SUPPORTED_KERNELS:
            raise ConfigError(f"{where}: kernel {self.kernel} unsupported; the engine runs {SUPPORTED_KERNELS}")
        if self.stride not in SUPPORTED_STRIDES:
            raise ConfigError(f"{where}: stride {self.stride} unsupported; the engine runs {SUPPORTED_STRIDES}")
        if not 0 <= self.padding <= max(self.kernel) // 2:
            raise ConfigError(f"{where}: padding {self.padding} unsupported for kernel {self.kernel}")
        geometry.check_cg(self.cg, None, where)
        numerics.check_fan_in(self.in_channels, *self.kernel, where=where)
        n = self.out_channels
        for arr, label in ((self.mult, "mult"), (self.shift, "shift"), (self.bias, "bias")):
            if arr.shape != (n,):
                raise ConfigError(f"{where}: {label} must have shape ({n},), got {arr.shape}")
        if self.mult.min(initial=0) < numerics.MULT_MIN or self.mult.max(initial=0) > numerics.MULT_MAX:
            raise ConfigError(f"{where}: mult out of int16 range")
        if self.shift.min(initial=0) < 0 or self.shift.max(initial=0) > numerics.SHIFT_MAX:
            raise ConfigError(f"{where}: shift out of range 0..{numerics.SHIFT_MAX}")
        if self.bias.min(initial=0) < numerics.BIAS_MIN or self.bias.max(initial=0) > numerics.BIAS_MAX:
            raise ConfigError(f"{where}: bias does not fit in {numerics.BIAS_BITS} bits")


@dataclass
class SubnetStage:
    """What one sub-net owns of a shared layer: its issue map and its output stage."""

    issue: np.ndarray   # bool (N, G): the groups this sub-net computes, a subset of the storage map
    mult: np.ndarray
    shift: np.ndarray
    bias: np.ndarray

    def __post_init__(self):
        self.issue = np.asarray(self.issue, dtype=bool)
        self.mult = np.asarray(self.mult, dtype=np.int64).reshape(-1)
        self.shift = np.asarray(self.shift, dtype=np.int64).reshape(-1)
        self.bias = np.asarray(self.bias, dtype=np.int64).reshape(-1)


@dataclass
class SharedTernaryConv:
    """One accelerated layer shared by K sub-nets (docs/subnets.md): the ternary codes stored
    once (the storage map: every group holding a non-zero code), and per sub-net an issue map
    and an output stage. Sub-net k computes ``subnet(k)``, a plain TernaryConv."""

    name: str
    codes: np.ndarray
    stages: list[SubnetStage]
    stride: int = 1
    padding: int = 0
    cg: int = 16
    relu: bool = False
    f_in: int = 8
    f_out: int = 8

    def __post_init__(self):
        self.codes = np.asarray(self.codes, dtype=np.int8)
        self._views: dict[int, TernaryConv] = {}
        self.validate()

    @classmethod
    def from_layer(cls, layer: TernaryConv) -> "SharedTernaryConv":
        """The K = 1 form of a plain layer: one issue map equal to its storage map."""
        return cls(layer.name, layer.codes, [SubnetStage(layer.indexer, layer.mult, layer.shift, layer.bias)],
                   layer.stride, layer.padding, layer.cg, layer.relu, layer.f_in, layer.f_out)

    @property
    def num_subnets(self) -> int:
        return len(self.stages)

    @property
    def storage(self) -> np.ndarray:
        """bool (N, G): the groups whose codes are stored (those holding a non-zero code)."""
        return geometry.group_indexer(self.codes, self.cg)

    @property
    def groups(self) -> int:
        return geometry.num_groups(self.codes.shape[1], self.cg)

    @property
    def nnz_groups(self) -> int:
        """Stored groups (the union of the sub-nets' issued groups)."""
        return int(self.storage.sum())

    def issue(self, k: int) -> np.ndarray:
        return self.stages[k].issue

    def subnet(self, k: int) -> TernaryConv:
        """Sub-net k of this layer: codes outside its issue map zeroed, its output stage."""
        if k not in self._views:
            st = self.stages[k]
            n, c, kh, kw = self.codes.shape
            codes = np.where(geometry.expand_group_mask(st.issue, self.cg, c, kh, kw), self.codes, 0)
            self._views[k] = TernaryConv(self.name, codes.astype(np.int8), st.mult, st.shift, st.bias,
                                         stride=self.stride, padding=self.padding, cg=self.cg, relu=self.relu,
                                         f_in=self.f_in, f_out=self.f_out)
        return self._views[k]

    def validate(self) -> None:
        where = f"layer {self.name!r}"
        if not self.stages:
            raise ConfigError(f"{where}: a shared layer needs at least one sub-net")
        if self.codes.ndim != 4:
            raise ConfigError(f"{where}: codes must be (N, C, Kh, Kw), got shape {self.codes.shape}")
        storage = self.storage
        union = np.zeros_like(storage)
        for k, st in enumerate(self.stages):
            if st.issue.shape != storage.shape:
                raise ConfigError(f"{where}: sub-net {k}'s issue map has shape {st.issue.shape}, "
                                  f"the layer's groups are {storage.shape}")
            if (st.issue & ~storage).any():
                raise ConfigError(f"{where}: sub-net {k} issues {int((st.issue & ~storage).sum())} group(s) "
                                  f"with no stored codes (the issue map must lie inside the storage map)")
            union |= st.issue
        if (storage & ~union).any():
            raise ConfigError(f"{where}: {int((storage & ~union).sum())} stored group(s) are issued by no "
                              f"sub-net; drop their codes (the storage map is the union of the issue maps)")
        for k in range(len(self.stages)):
            self._views.pop(k, None)
            self.subnet(k)  # each sub-net must be a valid TernaryConv
