"""Host-side driver: one API over the board, the RTL simulation and the integer reference."""
