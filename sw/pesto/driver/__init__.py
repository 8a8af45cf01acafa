"""Host-side driver: one API over the board, the RTL simulation and the integer reference.

``Accelerator(artifact, backend="ref" | "sim" | "pynq")`` runs an exported network
(docs/driver.md). ``protocol`` is the register/stream sequence of one layer run, shared by
the board and the simulation. numpy only (pynq on the board, cocotb for "sim").
"""

from .accelerator import BACKENDS, Accelerator, LayerRecord, open_backend
from .backends import Backend, BusBackend, RefBackend
from .protocol import Bus, LayerStats, check_fits, check_identity, connect, run_layer

__all__ = ["Accelerator", "BACKENDS", "LayerRecord", "open_backend", "Backend", "BusBackend", "RefBackend",
           "Bus", "LayerStats", "check_fits", "check_identity", "connect", "run_layer"]
