"""pesto: PE-wise Structured Ternary Optimization.

Train ternary CNNs whose zeros fall in whole PE-shaped groups, export them as packed 2-bit
codes with a 1-bit group indexer, and run them on an add/sub-only PE array that skips
all-zero groups (RTL and HLS for the PYNQ-Z1).

The board side (``pesto.ir``, ``pesto.numerics``, ``pesto.geometry``, ``pesto.reference``,
``pesto.hwspec``, ``pesto.artifact``, ``pesto.driver``) needs numpy only; torch is imported
only by the training and export code.
"""

__version__ = "0.1.0"
