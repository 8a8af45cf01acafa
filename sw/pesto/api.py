"""The Python API at the package top, in the manner of hls4ml's convert / compile / predict:

    import pesto
    model = pesto.train.fit(my_module, "fashion-mnist", epochs=2)   # or a `pesto train` checkpoint
    art = pesto.export(model, calib_images, "model.pesto")          # -> pesto.artifact.Artifact
    acc = pesto.load("model.pesto", backend="sim")                  # "ref" | "sim" | "pynq"
    logits = acc.predict(images)                                    # uint8 or [0, 1] float images

``pesto.export`` needs torch (the `train` extra); ``pesto.load`` and ``predict`` run on the
board's numpy-only install.
"""

from __future__ import annotations

from pathlib import Path


def export(model, calib_images=None, output=None, *, onnx=None, qonnx=None, **options):
    """Export ``model`` (an nn.Module, a `pesto train` checkpoint path or dict) to an Artifact,
    saved to ``output`` when given; ``onnx`` / ``qonnx``: also write those models. ``options``
    are pesto.export.export_model's (cg, act_bits, frac_bits, mean, std, verify, ...)."""
    from . import artifact as artifact_mod
    from .export.exporter import export_model, load_model
    source = load_model(str(model) if isinstance(model, Path) else model, options.get("cg"))
    art = export_model(source, calib_images, **options)
    if output is not None:
        artifact_mod.save(art, output)
    if onnx is not None:
        from .export.onnx import export_onnx
        export_onnx(source[0], onnx, tuple(art.input_shape))
    if qonnx is not None:
        from .export.qonnx import export_qonnx
        export_qonnx(art, qonnx)
    return art


def load(artifact, backend: str = "ref", **backend_options):
    """An exported network ready to run: a pesto.driver.Accelerator on ``backend`` ("ref": the
    integer reference, "sim": the RTL in simulation, "pynq": the board with overlay=...)."""
    from .driver import Accelerator
    return Accelerator(artifact, backend=backend, **backend_options)
