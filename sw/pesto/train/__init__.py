"""Training: checkpoints, the training loop, recipes, the `pesto train` command, and ``fit`` for
your own nn.Module (``pesto.train.fit``, in custom.py)."""


def fit(*args, **kwargs):
    """Train your own nn.Module: see pesto.train.custom.fit (imported on first use: it needs torch)."""
    from .custom import fit as _fit
    return _fit(*args, **kwargs)
