"""`pesto demo` end to end (README command one, minus the setup): the embedded model exported,
accuracy float vs integer, a few images through the accelerator RTL network with every logit
checked, one image profiled layer by layer with skipping on and off, and the dynamic model's
sub-nets switched between images on the RTL."""

from __future__ import annotations

import json

import pytest

from pesto.cli import main

pytestmark = [pytest.mark.sim, pytest.mark.slow]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """The embedded checkpoint; a ternarized random ResNet-20 checkpoint until it is committed."""
    from pesto.train.checkpoint import default_checkpoint_path
    if default_checkpoint_path().is_file():
        return default_checkpoint_path()
    import torch
    from pesto.train.checkpoint import build_from_config, save_checkpoint
    cfg = dict(name="resnet20", in_channels=1, num_classes=10, input_size=28)
    quant = dict(mode="wpc", cg=16, keep_first_last=True, cg_overrides={})
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "random.pt"
    save_checkpoint(path, build_from_config(cfg, quant), model_cfg=cfg, quant=quant,
                    data=dict(dataset="fashion-mnist", mean=[0.2860], std=[0.3530]))
    return path


def test_demo(checkpoint, tmp_path, capsys):
    argv = ["demo", "-o", str(tmp_path), "--images", "40", "--rtl-images", "8", "--profile-images", "1",
            "--calibration-images", "64", "--dynamic-images", "6"]
    from pesto.train.checkpoint import default_checkpoint_path
    if checkpoint != default_checkpoint_path():
        argv += ["--checkpoint", str(checkpoint)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "[6/6]" in printed and "bit-exact vs the integer reference: yes, all 8" in printed
    assert "6 images, 5 sub-net switches, every logit bit-exact vs the integer reference: yes" in printed
    result = json.loads((tmp_path / "demo.json").read_text())
    acc = result["accuracy"]
    assert acc["images"] == 40 and 0 <= acc["integer"] <= 100 and 0 <= acc["float"] <= 100
    comp = result["compression"]
    assert comp["compression"] == pytest.approx(32 / ((1 - comp["group_sparsity"]) * 2))
    assert comp["artifact_bytes"] < comp["float32_weight_bytes"]
    rtl = result["rtl"]
    assert rtl["images"] == 8 and rtl["bit_exact_vs_reference"] is True and rtl["mismatched_images"] == 0
    assert rtl["accuracy"] == rtl["integer_accuracy"]  # bit-exact logits: the same predictions
    # the default engine (v2) runs the whole network from one start: ~90 k cycles per image (v1: ~230 k)
    assert rtl["simulator"] == "verilator" and rtl["mode"] == "network" and result["dynamic"]["mode"] == "network"
    assert 20_000 < rtl["hw_cycles_per_image"] < 150_000 and rtl["sim_cycles"] > 8 * 20_000
    assert result["simulation"]["bit_exact_vs_reference"] is True
    assert len(result["layers"]) == comp["layers"] == 18
    e = result["end_to_end"]
    assert e["cycles_skip"] <= e["cycles_dense"] and e["us_per_image_skip"] == pytest.approx(e["cycles_skip"] / 100)
    for name in ("layers.csv", "speedup.png", "resnet20_fmnist.pesto", "dynamic.csv", "dynamic.png",
                 "resnet20_fmnist_dynamic.pesto"):
        assert (tmp_path / name).stat().st_size > 0
    dyn = result["dynamic"]
    assert dyn["bit_exact_vs_reference"] is True and dyn["rtl_images"] == 6 and dyn["switches"] == 5
    subs = dyn["subnets"]
    assert len(subs) == 3 and [s["rtl_images"] for s in subs] == [2, 2, 2]
    assert subs[0]["cycles_per_image"] > subs[1]["cycles_per_image"] > subs[2]["cycles_per_image"]
    for p in dyn["budget_picks"]:   # the most accurate sub-net within the budget, the faster on a tie
        fits = [s for s in subs if s["us_per_image"] <= p["budget_us"]]
        best = max(fits, key=lambda s: (s["accuracy_percent"], -s["us_per_image"]))
        assert p["subnet"] == best["index"]
    assert dyn["budget_picks"][0]["subnet"] == 2                # the tightest budget: the fastest sub-net
    assert abs(dyn["switch"]["engine_cycles"]) < 0.01 * dyn["switch"]["image_cycles"]
    from pesto import artifact
    saved = artifact.load(dyn["artifact"])
    assert saved.num_subnets == 3 and all("accuracy" in s.meta for s in saved.subnets)
    if checkpoint == default_checkpoint_path():  # the trained model: accurate and really compressed
        assert acc["float"] > 80 and abs(acc["delta_points"]) <= 2.6  # one image of 40 is 2.5 points
        assert comp["group_sparsity"] > 0.2 and e["speedup"] > 1.1
