"""export-to-fpga: trained PyTorch model -> the accelerator artifact (pesto.artifact).

    from pesto.export import export_model
    artifact = export_model("resnet20_fmnist_wpc.pt", calib_images)
    pesto.artifact.save(artifact, "resnet20.pesto")

``fakequant`` is the independent PyTorch integer forward of every exported layer, ``onnx``
the float ONNX export. docs/export.md explains the flow.
"""

import sys
import types

from .exporter import UntrainedWarning, export_model, load_model

__all__ = ["export_model", "load_model", "UntrainedWarning"]


class _CallableModule(types.ModuleType):
    """``pesto.export`` is this package and the top-level API function at once:
    ``pesto.export(model, calib_images, "model.pesto")`` calls pesto.api.export."""

    def __call__(self, *args, **kwargs):
        from ..api import export
        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
