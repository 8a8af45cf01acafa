"""RTL simulation: build the Verilog for cocotb (build.py) and serve it to the driver
(server.py). Nothing here imports cocotb until a build or a run is asked for."""
