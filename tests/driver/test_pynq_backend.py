"""The pynq backend against the real pynq 4.0.0 package, on a board made of the RTL simulation.

pynq pins numpy 1.26, so this runs it in the board venv (pynq_venv.py: Python 3.10, pesto from its
wheel, built once under build/):
pynq_board.py there drives our PestoAccelIP (a pynq DefaultIP bound by VLNV), pynq's MMIO,
pynq.allocate buffers and pynq's own AXI DMA driver. Register accesses of the accelerator and
the DMA's stream round trip come back over a socket to this process, which serves them with
the session's SimAccelerator. Results must equal the reference backend bit for bit.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pesto.driver import Accelerator
from pesto.errors import HardwareError
from pesto.sim import wire

pytestmark = [pytest.mark.sim, pytest.mark.xdist_group("driver-sim")]

HERE = Path(__file__).parent


def serve(sock: socket.socket, bus, proc: subprocess.Popen) -> int:
    """Answer the board's register and stream requests with ``bus`` until it hangs up."""
    served = 0
    while True:
        try:
            header, payload = wire.recv(sock)
        except (wire.WireClosed, OSError):
            return served
        op, reply, data = header["op"], {"ok": True}, b""
        if op == "read":
            reply["value"] = bus.read(header["offset"])
        elif op == "write":
            bus.write(header["offset"], header["value"])
        elif op == "transfer":
            words = np.frombuffer(payload, "<u8")
            try:
                data = bus.transfer(words, header["n_out"], timeout_s=60).astype("<u8").tobytes()
            except HardwareError as e:
                reply.update(failed=True, message=str(e))
        else:
            reply = {"ok": False, "message": f"unknown op {op}"}
        wire.send(sock, reply, data)
        served += 1


def test_pynq_backend_on_the_real_pynq_package(sim, artifact_path, art, fmnist, tmp_path):
    """One board session (pynq import, overlay, DMA, the network) checked in full."""
    from pynq_venv import pynq_python
    python = pynq_python()
    job = tmp_path
    layers = [art.layers[0], art.layers[-1]]
    rng = np.random.default_rng(0)
    for layer in layers:
        np.save(job / f"layer_{layer.name}.npy",
                rng.integers(-3000, 3000, size=(2, layer.in_channels, 8, 8)).astype(np.int16))
    np.save(job / "images.npy", fmnist[0][:1])
    (job / "job.json").write_text(json.dumps({"artifact": str(artifact_path), "timeout_s": 2.0,
                                              "layers": [layer.name for layer in layers]}))
    ours, theirs = socket.socketpair()
    # pesto comes from the wheel installed in the board venv, not from this checkout
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["XILINX_XRT"] = "/nonexistent"
    proc = subprocess.Popen([str(python), str(HERE / "pynq_board.py"), str(theirs.fileno()), str(job)],
                            pass_fds=[theirs.fileno()], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    theirs.close()
    try:
        served = serve(ours, sim, proc)
        out_text, _ = proc.communicate(timeout=120)
    finally:
        ours.close()
        if proc.poll() is None:
            proc.kill()
    sim.reset()  # the lost-output case leaves nothing behind for the next test
    assert proc.returncode == 0, out_text.decode(errors="replace")[-4000:]
    results = json.loads((job / "results.json").read_text())
    out = dict(np.load(job / "out.npz"))

    # the real package, and our driver registered with it for the accelerator's VLNV
    assert results["pynq_version"] == "4.0.0" and results["numpy_version"].startswith("1.26")
    assert results["bound"], "PestoAccelIP is not registered with pynq for the accelerator's VLNV"

    # layers and the whole network, bit for bit the reference backend
    ref = Accelerator(art, backend="ref")
    for layer in layers:
        x = np.load(job / f"layer_{layer.name}.npy")
        assert np.array_equal(out[f"layer_{layer.name}"], ref.run_layer(layer.name, x)), layer.name
        assert (out[f"cycles_{layer.name}"] > 0).all()
    assert np.array_equal(out["logits"], ref.execute(fmnist[0][:1]))
    assert set(results["records"]) == {layer.name for layer in art.layers}
    assert served > 100

    # clear errors for a foreign bitstream, an overlay without DMA or accelerator, a lost output
    errors = results["errors"]
    assert errors["other_ip"].startswith("HardwareError") and "not a pesto accelerator" in errors["other_ip"]
    assert errors["no_dma"].startswith("HardwareError") and "no AXI DMA" in errors["no_dma"]
    assert errors["no_accel"].startswith("HardwareError") and "no pesto accelerator" in errors["no_accel"]
    assert errors["dead_engine"].startswith("HardwareError") and "timed out" in errors["dead_engine"]


@pytest.mark.skipif("SUBNET" not in __import__("pesto.hwspec", fromlist=["REGMAP"]).REGMAP.registers,
                    reason="needs the v2 register map (regmap.json of wip/rtlv2)")
def test_pynq_backend_network_mode(tmp_path):
    """Network mode through the real pynq package: the engine behind the board is the per-model HLS
    network engine in C simulation (a v2 engine with every sub-net on chip); each batch is one
    DMA send and one receive, a sub-net switch inside a batch one more run, bit for bit the
    reference."""
    from pesto import artifact
    from pesto.hls.network import open_csim
    from pesto.reference import network
    from pesto.sim.networks import random_chain, random_images, random_subnets
    from pynq_venv import pynq_python
    art = random_subnets(random_chain(3), keep=(1.0, 0.5), seed=3)     # as tests/hls: one g++ build
    images = random_images(art, 3, 3)
    job = tmp_path
    np.save(job / "images.npy", images)
    plan = [1, 1, 0]
    (job / "job.json").write_text(json.dumps({"network": True, "artifact": str(artifact.save(art, job / "a.pesto")),
                                              "timeout_s": 10.0, "plan": plan}))
    ours, theirs = socket.socketpair()
    # pesto comes from the wheel installed in the board venv, not from this checkout
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["XILINX_XRT"] = "/nonexistent"
    with open_csim(art) as bus:
        proc = subprocess.Popen([str(pynq_python()), str(HERE / "pynq_board.py"), str(theirs.fileno()), str(job)],
                                pass_fds=[theirs.fileno()], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        theirs.close()
        try:
            serve(ours, bus, proc)
            out_text, _ = proc.communicate(timeout=120)
        finally:
            ours.close()
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, out_text.decode(errors="replace")[-4000:]
    results = json.loads((job / "results.json").read_text())
    out = dict(np.load(job / "out.npz"))
    assert results["mode"] == "network", results["mode_reason"]
    assert results["sends"] == [1, 1] and results["receives"] == [1, 1]        # one round trip per batch
    assert results["mixed_sends"] == 2 and results["mixed_receives"] == 2       # a switch: one more run
    for k in range(2):
        assert np.array_equal(out[f"subnet_{k}"], network.run(art, images, subnet=k)), k
    want = np.stack([network.run(art, images[i:i + 1], subnet=k)[0] for i, k in enumerate(plan)])
    assert np.array_equal(out["mixed"], want)
    assert results["cycles"][0] > results["cycles"][1] > 0
    tp = results["throughput"]
    assert tp["images_per_s_from"] == "wall time" and tp["hw_images_per_s"] > 0   # the board: wall time
