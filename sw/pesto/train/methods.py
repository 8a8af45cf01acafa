"""Training methods: what one mode of `pesto train` does, as an object the generic loop calls.

    method = get_method("wpc")(model, cfg, total_steps)     # the registry, not a string table
    stats = method.train_step(net, opt, x, y, step)          # once per batch (loop.py)

A method declares how its model is built (``ternary``, ``prepare``), which regularizer it uses
(``penalty``, ``proximal``: pesto.prune.Regularizer), which options define a run (for
``--resume``) and what its checkpoint keeps (``state_dict``). The loop owns data, optimizer,
schedule, DDP, checkpoints and history; a method owns one step and its own state. The step is

    begin_step(step) -> forward_backward(...) -> before_update(opt) -> opt.step() -> after_update(opt)

and every hook is a no-op by default, so a method overrides only what it changes. docs/methods.md
lists what a new method needs. Built in: fp, tern, prune, naive, wpc (Chapter 2) and ast
(Chapter 3, pesto.train.ast_gc).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import metrics
from ..errors import ConfigError
from ..prune import Regularizer, compressed_layers

METHODS: dict[str, type["Method"]] = {}


def register(cls: type["Method"]) -> type["Method"]:
    """Class decorator: make ``cls`` the method of mode ``cls.name``."""
    if not cls.name or cls.name in METHODS:
        raise ConfigError(f"method name {cls.name!r} is empty or taken")
    METHODS[cls.name] = cls
    return cls


def get_method(name: str) -> type["Method"]:
    if name not in METHODS:
        raise ConfigError(f"unknown mode {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name]


def method_names() -> tuple[str, ...]:
    return tuple(METHODS)


@dataclass
class StepStats:
    """What one training step reports: cross-entropy, penalty, correct predictions, images."""

    ce: float
    penalty: float
    correct: int
    images: int


class Method:
    """Base class: a plain supervised step on ``cross_entropy + penalty``.

    Class attributes a method sets:
      name             the mode string (``pesto train --mode NAME``)
      summary          one line for ``--help``
      ternary          build the model with ternary layers (pesto.quant.ternarize_model)
      penalty          None, "lasso" or "wpc": the Regularizer's kind (eq 2.4-2.7)
      proximal         apply the penalty as a proximal step after the update instead of in the loss
      run_defining     TrainConfig fields that shape this method's run, besides the loop's own
                       (``--resume`` refuses to change them)
      options          TrainConfig fields only this method reads (others refuse them when set)
    """

    name = ""
    summary = ""
    ternary = False
    penalty: str | None = None
    proximal = False
    run_defining: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    # -- the class side: configuration and model structure --------------------------------
    @classmethod
    def validate(cls, cfg) -> None:
        """Raise ConfigError for options that do not fit this method (called by TrainConfig).
        Default: refuse any other method's own option set away from its default."""
        for other in METHODS.values():
            for opt in other.options:
                if opt not in cls.options and getattr(cfg, opt) != cfg.default(opt):
                    raise ConfigError(f"option {opt!r} (from the recipe or the command line) is for --mode "
                                      f"{other.name}, not --mode {cls.name}; drop it or use --mode {other.name}")

    @classmethod
    def quant_extra(cls, cfg) -> dict:
        """Entries the checkpoint's ``quant`` needs to rebuild this method's model (besides mode, cg, ...)."""
        return {}

    @classmethod
    def prepare(cls, model: nn.Module, quant: dict) -> nn.Module:
        """Give a freshly built architecture this method's structure (ternary layers, sub-nets)."""
        from ..quant import is_ternary, ternarize_model
        if cls.ternary and not any(is_ternary(m) for m in model.modules()):   # a user's model may come ternary
            ternarize_model(model, cg=int(quant["cg"]), keep_first_last=bool(quant["keep_first_last"]),
                            cg_overrides=dict(quant.get("cg_overrides") or {}))
        return model

    @classmethod
    def regularizer(cls, model: nn.Module, lam: float = 0.0, a: float = 1.0, cg: int = 16,
                    keep_first_last: bool = True, cg_overrides: dict | None = None) -> Regularizer:
        return Regularizer(compressed_layers(model, cg, keep_first_last, cg_overrides), cls.penalty, lam, a,
                           proximal=cls.proximal)

    # -- the instance side: one run -------------------------------------------------------
    find_unused_parameters = False   # DDP: some parameters get no gradient in a step

    def __init__(self, model: nn.Module, cfg=None, total_steps: int = 0):
        self.model, self.cfg, self.total_steps = model, cfg, int(total_steps)
        kw = {} if cfg is None else dict(lam=cfg.lam, a=cfg.a, cg=cfg.cg, keep_first_last=cfg.keep_first_last,
                                         cg_overrides=cfg.cg_overrides)
        self.reg = self.regularizer(model, **kw)

    @property
    def layers(self) -> list[tuple[str, nn.Module, int]]:
        """The compressed layers (name, module, cg): what the metrics are measured on."""
        return self.reg.layers

    def describe(self) -> str:
        """Part of the start banner."""
        c = self.cfg
        return f"Cg {c.cg}, lambda {c.lam}, a {c.a}"

    def begin_step(self, step: int) -> None:
        """Before the forward pass of global step ``step`` (0-based over the whole run)."""

    def loss(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor):
        """(loss to differentiate, cross-entropy, penalty or None, logits)."""
        reg = self.reg
        out = net(x)
        ce = F.cross_entropy(out, y)
        with torch.set_grad_enabled(not reg.proximal):  # a proximal penalty is only logged here
            pen = reg.penalty() if reg.active else None
        loss = ce + pen if pen is not None and not reg.proximal else ce
        return loss, ce, pen, out

    def forward_backward(self, net, opt, x, y) -> StepStats:
        loss, ce, pen, out = self.loss(net, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        return StepStats(float(ce.detach()), float(pen.detach()) if pen is not None else 0.0,
                         int((out.argmax(1) == y).sum()), len(y))

    def before_update(self, opt: torch.optim.Optimizer) -> None:
        """After backward (under DDP: after the gradient all-reduce), before the optimizer step."""

    def after_update(self, opt: torch.optim.Optimizer) -> None:
        """After the optimizer step. Default: the proximal step of a proximal regularizer."""
        self.reg.prox_(opt.param_groups[0]["lr"])

    def train_step(self, net, opt, x, y, step: int = 0) -> StepStats:
        self.begin_step(step)
        stats = self.forward_backward(net, opt, x, y)
        self.before_update(opt)
        opt.step()
        self.after_update(opt)
        return stats

    def postfix(self, stats: StepStats) -> dict:
        """The progress bar's fields after a step."""
        return {"loss": f"{stats.ce:.3f}", "pen": f"{stats.penalty:.3f}"}

    def epoch_metrics(self, model: nn.Module, test_loader, device) -> dict:
        """History fields of an epoch (rank 0): test loss/accuracy and the sparsity metrics."""
        from .loop import evaluate
        test_loss, test_acc = evaluate(model, test_loader, device)
        m = metrics.model_metrics(model, self.layers)
        entry = {"test_loss": test_loss, "test_acc": test_acc}
        for k in ("overall_sparsity", "group_sparsity", "in_group_sparsity", "compression_rate"):
            entry[k] = m[k]
        entry["layers"] = {name: {"group_sparsity": v["group_sparsity"], "layer_sparsity": v["layer_sparsity"]}
                           for name, v in m["layers"].items()}
        return entry

    def epoch_report(self, entry: dict) -> str:
        """Extra lines printed after the epoch's summary line ("" for none)."""
        return ""

    def on_epoch_end(self, epoch: int) -> None:
        """After the epoch's history entry, before the checkpoint is written (every rank)."""

    def state_dict(self) -> dict:
        """What a checkpoint must keep so that --resume continues exactly (tensors and plain types)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


@register
class Float(Method):
    name, summary = "fp", "float weights, no regularizer"


@register
class Ternary(Method):
    name, summary, ternary = "tern", "ternary weights (eq 2.1-2.3), no regularizer", True


@register
class FloatGroupLasso(Method):
    name, summary = "prune", "float weights + group lasso (eq 2.4) by proximal SGD"
    penalty, proximal = "lasso", True


@register
class Naive(Method):
    name, summary = "naive", "ternary + group lasso on the latent weights (eq 2.5)"
    ternary, penalty = True, "lasso"


@register
class WPC(Method):
    name, summary = "wpc", "ternary + weight penalty clipping (eq 2.6-2.7)"
    ternary, penalty = True, "wpc"

    def epoch_metrics(self, model, test_loader, device) -> dict:
        entry = super().epoch_metrics(model, test_loader, device)
        for name, t in self.reg.thresholds().items():
            entry["layers"][name].update(delta=t["delta"], clipped=t["clipped"])
        return entry


from . import ast_gc as _ast_gc  # noqa: E402,F401  registers "ast"
