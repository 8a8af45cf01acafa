"""Training memory of one step, measured (and table 16's analytic count beside it).

    m = measure_step(net, optimizer, x, y)
    m["saved_activation_bytes"], m["trainable_bytes"], m["peak_rss_bytes"], m["table16"]

* saved for backward: every tensor autograd keeps for the backward pass, seen through
  ``torch.autograd.graph.saved_tensors_hooks``; unique storages are counted once at their full
  size. Storages that belong to the model's parameters and buffers or to the cached frozen weights
  (``ops.frozen_storages``) are weights, not activations, and are reported apart.
* trainable: parameters that train, their gradients, and the optimizer's state (Adam: two
  moments per parameter), in bytes, after the step.
* peak RSS: the process's resident-set high-water mark during the step (Linux: VmHWM after
  resetting it through /proc/self/clear_refs), and its rise over the resident size before.
* table16: the analytic count of table 16 (ops.table16) for the same forward.
* flops: floating-point operations of the step (forward + backward) as torch dispatches them
  (``torch.utils.flop_counter.FlopCounterMode``: convolutions and matrix products, 2 per MAC).
"""

from __future__ import annotations

import gc
import time

import torch
import torch.nn.functional as F

from . import ops


def _status(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def saved_tensors(net, x: torch.Tensor, loss_fn=None) -> tuple[torch.Tensor, dict]:
    """Run the forward and loss under saved_tensors_hooks: (loss, accounting of what autograd saved)."""
    weights = {t.untyped_storage().data_ptr() for t in list(net.parameters()) + list(net.buffers())}
    seen: dict[int, tuple[int, bool]] = {}
    count = [0]

    def pack(t):
        count[0] += 1
        st = t.untyped_storage()
        ptr = st.data_ptr()
        if ptr and ptr not in seen:
            seen[ptr] = (st.nbytes(), ptr in weights)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = net(x)
        loss = loss_fn(out) if loss_fn else out.float().sum()
    frozen = ops.frozen_storages()
    act = sum(n for p, (n, w) in seen.items() if not w and p not in frozen)
    wts = sum(n for p, (n, w) in seen.items() if w or p in frozen)
    return loss, {"saved_tensors": count[0], "saved_storages": len(seen),
                  "saved_activation_bytes": act, "saved_weight_bytes": wts}


def trainable_bytes(net, optimizer) -> dict:
    params = [p for p in net.parameters() if p.requires_grad]
    p_bytes = sum(p.numel() * p.element_size() for p in params)
    g_bytes = sum(p.grad.numel() * p.grad.element_size() for p in params if p.grad is not None)
    o_bytes = 0
    for state in optimizer.state.values():
        for v in state.values():
            if isinstance(v, torch.Tensor):
                o_bytes += v.numel() * v.element_size()
    return {"trainable_params": sum(p.numel() for p in params), "param_bytes": p_bytes, "grad_bytes": g_bytes,
            "optimizer_bytes": o_bytes, "trainable_bytes": p_bytes + g_bytes + o_bytes}


def measure_step(net, optimizer, x: torch.Tensor, y: torch.Tensor, warmup: int = 1) -> dict:
    """Measure one training step of ``net`` (in training mode) on the batch (x, y).

    ``warmup`` steps run first (the optimizer creates its state on the first one), so the figures
    are those of a step in the steady state. The batch's own memory is outside the accounting.
    The step changes the parameters: measure on a copy if that matters.
    """
    net.train()

    def loss_fn(out):
        return F.cross_entropy(out, y)

    for _ in range(warmup):
        optimizer.zero_grad(set_to_none=True)
        loss_fn(net(x)).backward()
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc:
        loss_fn(net(x)).backward()
    flops = int(fc.get_total_flops())
    optimizer.zero_grad(set_to_none=True)
    with ops.table16() as t16:   # a grad-enabled forward: the count needs to see what requires grad
        del_me = net(x)
    del del_me
    gc.collect()
    rss0 = _status("VmRSS")
    peak_ok = _reset_peak()
    t0 = time.perf_counter()
    loss, saved = saved_tensors(net, x, loss_fn)
    loss.backward()
    optimizer.step()
    seconds = time.perf_counter() - t0
    peak = _status("VmHWM") if peak_ok else None
    del loss
    out = {"batch": int(x.shape[0]), **saved, **trainable_bytes(net, optimizer),
           "peak_rss_bytes": peak, "rss_before_bytes": rss0,
           "step_rss_rise_bytes": (peak - rss0) if peak is not None and rss0 is not None else None,
           "step_seconds": seconds, "flops": flops,
           "table16": {"params": t16.params, "activations": t16.activations,
                       "activation_bytes": 4 * t16.activations, "param_bytes": 4 * t16.params,
                       "layers": len(t16.rows)}}
    optimizer.zero_grad(set_to_none=True)
    return out
