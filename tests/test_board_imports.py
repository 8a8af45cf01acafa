"""The board side runs on the PYNQ image without torch: importing it must not pull torch in."""

import subprocess
import sys

BOARD_MODULES = ["pesto.ir", "pesto.numerics", "pesto.geometry", "pesto.reference", "pesto.hwspec",
                 "pesto.artifact", "pesto.driver", "pesto.data.readers", "pesto.cli"]

BLOCK_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is not on the board")
sys.meta_path.insert(0, Block())
import importlib
for m in sys.argv[1:]:
    importlib.import_module(m)
print("ok")
"""


def test_board_modules_import_without_torch():
    r = subprocess.run([sys.executable, "-c", BLOCK_TORCH, *BOARD_MODULES], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_the_blocker_really_blocks_torch():
    r = subprocess.run([sys.executable, "-c", BLOCK_TORCH, "pesto.export"], capture_output=True, text=True)
    assert r.returncode != 0 and "torch is not on the board" in r.stderr
