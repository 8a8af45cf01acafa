"""pesto: PE-wise Structured Ternary Optimization.

Train ternary CNNs whose zeros fall in whole PE-shaped groups, export them as packed 2-bit
codes with a 1-bit group indexer, and run them on an add/sub-only PE array that skips
all-zero groups (RTL and HLS for the PYNQ-Z1).

The board side (``pesto.ir``, ``pesto.numerics``, ``pesto.geometry``, ``pesto.reference``,
``pesto.hwspec``, ``pesto.artifact``, ``pesto.driver``) needs numpy only; torch is imported
only by the training and export code.
"""

__version__ = "0.1.0"

# The API at the top (pesto.api): pesto.export(...), pesto.load(...) -> .predict(images),
# pesto.train.fit(...). Imported on first use, so `import pesto` stays numpy-only.
_API = {"load": "pesto.api"}


def __getattr__(name):
    import importlib
    import importlib.util
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    # subpackages on first use: pesto.train.fit(...), and pesto.export, which is callable as
    # pesto.export(...) (pesto.api.export)
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'pesto' has no attribute {name!r}")
