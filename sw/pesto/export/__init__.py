"""export-to-fpga: trained PyTorch model -> the accelerator artifact (pesto.artifact).

    from pesto.export import export_model
    artifact = export_model("resnet20_fmnist_wpc.pt", calib_images)
    pesto.artifact.save(artifact, "resnet20.pesto")

``fakequant`` is the independent PyTorch integer forward of every exported layer, ``onnx``
the float ONNX export. docs/export.md explains the flow.
"""

from .exporter import UntrainedWarning, export_model, load_model

__all__ = ["export_model", "load_model", "UntrainedWarning"]
