"""On-device transfer learning (dissertation chapter 4): Rep-Net reprograms a frozen backbone.

    from pesto.transfer import TransferConfig, transfer
    ckpt = transfer(TransferConfig(backbone="runs/backbone.pt", data="digits", out="runs/digits.pt"))

``model`` builds the network (Rep-Net and the baselines), ``connectors`` finds where Rep-Net meets
the backbone, ``ops`` the memory-lean frozen ops, ``memory`` measures what a training step keeps,
``loop`` trains, ``deploy`` grafts the Rep-Net onto the backbone's artifact. docs/transfer.md.
"""

from .model import DESIGNS, METHODS, TransferNet

_LAZY = {"TransferConfig": "loop", "transfer": "loop", "measure_step": "memory", "export_transferred": "deploy",
         "load_transfer": "checkpoint"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'pesto.transfer' has no attribute {name!r}")


__all__ = ["DESIGNS", "METHODS", "TransferNet", *_LAZY]
