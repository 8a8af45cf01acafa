"""The embedded dynamic-inference model, sw/pesto/assets/resnet20_fmnist_ast.pt (AST-GC, K = 3):
it loads weights_only with its card true to the file, its sub-nets have their target group
sparsities, and its export is one format 1.1 artifact whose every sub-net runs on the integer
reference, bit-exact with that sub-net's fake-quant forward, agreeing with its float forward and
keeping the accuracy its card states."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pesto import artifact as A
from pesto.export import export_model, fakequant
from pesto.prune.subnets import SubnetMasks, select_subnet
from pesto.reference import run
from pesto.train.checkpoint import load_checkpoint, model_from_checkpoint, subnets_checkpoint_path
from pesto.util import sha256

ASSET = subnets_checkpoint_path()
N_TEST = 200


@pytest.fixture(scope="module")
def card():
    return json.loads(ASSET.with_suffix(".json").read_text())


@pytest.fixture(scope="module")
def exported(fmnist, tmp_path_factory):
    art = export_model(str(ASSET), fmnist[0][:32], num_calibration=32, verify=16)
    return A.load(A.save(art, tmp_path_factory.mktemp("ast") / "ast.pesto"))


def test_the_asset_loads_weights_only_and_its_card_is_true_to_it(card):
    raw = torch.load(ASSET, weights_only=True)
    assert raw["optimizer"] is None                              # released for inference
    ckpt = load_checkpoint(ASSET)
    data = ASSET.read_bytes()
    assert card["bytes"] == len(data) < 2_000_000 and card["sha256"] == sha256(data)
    assert card["quant"]["mode"] == "ast" and card["evaluation"]["images"] == 10000
    names = [s["name"] for s in card["evaluation"]["subnets"]]
    model = model_from_checkpoint(ckpt)
    assert model.subnet_names == names == ["s30", "s50", "s70"]
    masks = SubnetMasks(model)
    for k, target in enumerate((0.3, 0.5, 0.7)):
        assert abs(masks.group_sparsity(k) - target) < 0.01, (k, masks.group_sparsity(k))
    assert card["subnets"][2]["compression_rate"] > card["subnets"][0]["compression_rate"]


def test_every_subnet_of_the_export_runs_on_the_reference(exported, card, fmnist):
    art = exported
    assert art.num_subnets == 3 and art.subnet_names == ["s30", "s50", "s70"]
    assert all(s.meta["verification"]["top1_agreement"] >= 90 for s in art.subnets)
    stats = art.subnet_stats()
    assert stats[0]["nnz_groups"] > stats[1]["nnz_groups"] > stats[2]["nnz_groups"]
    model = model_from_checkpoint(load_checkpoint(ASSET))
    mean, std = card["data"]["mean"][0], card["data"]["std"][0]
    x, labels = fmnist[1][:N_TEST], fmnist[2][:N_TEST]
    full = {s["name"]: s["test_acc"] for s in card["evaluation"]["subnets"]}
    for k, name in enumerate(art.subnet_names):
        logits = run(art, x, subnet=name)
        assert np.array_equal(logits[:4], run(art.subnet(k), x[:4], conv=fakequant.conv))
        select_subnet(model, k)
        with torch.no_grad():
            ref = model((torch.from_numpy(x).float() / 255 - mean) / std).argmax(1).numpy()
        pred = logits.argmax(1)
        assert (pred == ref).mean() >= 0.9, name
        # 200 images: a standard error of ~3 points around the card's 10,000-image figure
        assert 100 * (pred == labels).mean() >= full[name] - 8, (name, 100 * (pred == labels).mean(), full[name])
