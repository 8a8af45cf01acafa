"""How a layer's weights form groups: the one question every group regularizer asks.

A ``Grouper`` answers it for one weight shape: the shape of a mask with one bit per group,
each group's L2 norm (and RMS, comparable across layers), the expansion of a group mask to the
weight's shape, and the *runs* of M consecutive groups that an N:M pattern keeps N of.

    PEGroups(cg)     the accelerator's PE groups (pesto.geometry): cg input channels x Kh x Kw
                     of one output channel; mask (N, G); runs along G within an output channel
    ElementGroups()  every weight its own group: mask of the weight's shape; runs of M
                     consecutive input channels at one (n, kh, kw), the layout of NVIDIA's
                     N:M sparse tensor cores (a conv weight read as (N, Kh, Kw, C))

What acts on the groups lives elsewhere: the penalties and the proximal step
(pesto.prune: group lasso, WPC), prune-and-regrow and N:M selection (pesto.prune.regrow).
Each takes a Grouper, so a new grouping (say, output-channel groups) needs no change there.
"""

from __future__ import annotations

import torch

from .. import geometry
from ..errors import ConfigError


class Grouper:
    """Groups of one layer's weight. Subclasses define the methods below for torch tensors."""

    kind = ""

    def mask_shape(self, wshape) -> tuple[int, ...]:
        raise NotImplementedError

    def norms(self, w: torch.Tensor) -> torch.Tensor:
        """L2 norm of every group, shape mask_shape(w.shape); keeps autograd."""
        raise NotImplementedError

    def sizes(self, wshape) -> torch.Tensor:
        """Real weights per group (padding excluded), shape mask_shape."""
        raise NotImplementedError

    def expand(self, mask: torch.Tensor, wshape) -> torch.Tensor:
        """bool mask (mask_shape) -> bool (wshape): each group's bit over its weights."""
        raise NotImplementedError

    def runs(self, x: torch.Tensor, m: int, where: str = "layer") -> torch.Tensor:
        """A mask-shaped tensor viewed as (R, m): every run of m consecutive groups of the N:M
        pattern is one row. ConfigError when m does not divide the run axis."""
        raise NotImplementedError

    def unruns(self, r: torch.Tensor, wshape) -> torch.Tensor:
        """Inverse of ``runs``: (R, m) -> mask_shape."""
        raise NotImplementedError

    def rms(self, w: torch.Tensor) -> torch.Tensor:
        """Root-mean-square of every group: its norm over sqrt(its real size), comparable across layers."""
        return self.norms(w) / self.sizes(w.shape).to(w.dtype).sqrt()

    def __eq__(self, other):
        return type(self) is type(other) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in vars(self).items())})"


def _run_error(where: str, what: str, length: int, m: int, fix: str) -> ConfigError:
    return ConfigError(f"{where}: an N:M pattern with M={m} keeps N of every {m} consecutive {what}, but the "
                       f"layer has {length} {what} per run ({length} is not a multiple of {m}); {fix}")


class PEGroups(Grouper):
    """The accelerator's PE groups of pesto.geometry: mask (N, G)."""

    kind = "group"

    def __init__(self, cg: int):
        self.cg = geometry.check_cg(cg)

    def mask_shape(self, wshape):
        return (int(wshape[0]), geometry.num_groups(int(wshape[1]), self.cg))

    def norms(self, w):
        return geometry.group_norms(w, self.cg)

    def sizes(self, wshape):
        n, c = int(wshape[0]), int(wshape[1])
        taps = int(torch.tensor(wshape[2:]).prod()) if len(wshape) > 2 else 1
        g = geometry.num_groups(c, self.cg)
        per = torch.clamp(c - torch.arange(g) * self.cg, max=self.cg) * taps
        return per.expand(n, g)

    def expand(self, mask, wshape):
        kh, kw = (int(wshape[2]), int(wshape[3])) if len(wshape) == 4 else (1, 1)
        full = geometry.expand_group_mask(mask, self.cg, int(wshape[1]), kh, kw)
        return full.reshape(wshape) if len(wshape) == 2 else full

    def runs(self, x, m, where="layer"):
        n, g = x.shape
        if g % m:
            raise _run_error(where, f"PE groups of Cg={self.cg}", g, m,
                             f"choose a smaller --cg (so that C/Cg is a multiple of {m} in every layer) "
                             f"or a smaller M")
        return x.reshape(n * g // m, m)

    def unruns(self, r, wshape):
        return r.reshape(self.mask_shape(wshape))


class ElementGroups(Grouper):
    """Every weight its own group (unstructured / element N:M sparsity); mask of the weight's shape."""

    kind = "element"

    def mask_shape(self, wshape):
        return tuple(int(v) for v in wshape)

    def norms(self, w):
        return w.abs()

    def sizes(self, wshape):
        return torch.ones(self.mask_shape(wshape), dtype=torch.long)

    def expand(self, mask, wshape):
        return mask

    @staticmethod
    def _channels_last(x):
        return x.permute(0, 2, 3, 1) if x.ndim == 4 else x        # (N, Kh, Kw, C): C fastest

    def runs(self, x, m, where="layer"):
        c = x.shape[1]
        if c % m:
            raise _run_error(where, "input channels", c, m, "use an M that divides every layer's input "
                             "channels (the first layer stays float)")
        return self._channels_last(x).reshape(-1, m)

    def unruns(self, r, wshape):
        if len(wshape) == 4:
            n, c, kh, kw = (int(v) for v in wshape)
            return r.reshape(n, kh, kw, c).permute(0, 3, 1, 2)
        return r.reshape(tuple(int(v) for v in wshape))

    def gemm_matrix(self, x):
        """(N, Kh*Kw*C) view of a weight-shaped tensor, C fastest: the dense matrix whose rows an
        N:M element mask makes N-of-M sparse (what torch's semi-structured sparsity takes)."""
        return self._channels_last(x).reshape(x.shape[0], -1)


GROUPERS = {"group": PEGroups, "element": ElementGroups}


def make_grouper(kind: str, cg: int) -> Grouper:
    if kind not in GROUPERS:
        raise ConfigError(f"unknown grouping {kind!r}; use one of {', '.join(GROUPERS)}")
    return PEGroups(cg) if kind == "group" else ElementGroups()


def as_grouper(g) -> Grouper:
    """A Grouper from a Grouper or an int group size Cg (PE groups)."""
    return g if isinstance(g, Grouper) else PEGroups(g)
