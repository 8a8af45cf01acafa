"""Helpers of the transfer tests (importable from test modules, unlike conftest)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "driver"))
from small_model import SIZE, crop, save_small_checkpoint  # noqa: E402,F401


def small_config(small, **kw):
    from pesto.transfer import TransferConfig
    base = dict(backbone=str(small["backbone"]), data="fashion-mnist", classes=[5, 6, 7, 8, 9], resize=True,
                epochs=1, steps_per_epoch=4, batch_size=16, subset=256, test_subset=64,
                calib_data=str(small["calib"]), calib_images=64, progress=False, measure_memory=False,
                out=str(small["dir"] / "t.pt"))
    base.update(kw)
    return TransferConfig(**base)
