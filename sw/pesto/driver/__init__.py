"""Host-side driver: one API over the board, the RTL simulation and the integer reference.

``Accelerator(artifact, backend="ref" | "sim" | "pynq")`` runs an exported network
(docs/driver.md). ``protocol`` is the register/stream sequence of one layer run, shared by
the board and the simulation; ``tiling`` splits a layer larger than the build across runs. numpy only (pynq on the board, cocotb for "sim").
"""

from .accelerator import BACKENDS, Accelerator, LayerRecord, open_backend
from .backends import Backend, BusBackend, HostFallbackWarning, RefBackend
from .protocol import Bus, LayerStats, check_fits, check_identity, connect, run_layer
from .tiling import Plan, plan

__all__ = ["Accelerator", "BACKENDS", "LayerRecord", "open_backend", "Backend", "BusBackend", "RefBackend",
           "HostFallbackWarning", "Bus", "LayerStats", "check_fits", "check_identity", "connect", "run_layer",
           "Plan", "plan"]
