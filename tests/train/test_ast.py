"""AST-GC (Chapter 3) by hand: eq 3.4, the schedules, prune-and-regrow, N:M masks, masks and BN
sets honoured, the shared-codes rule, checkpoints of masks, and every bad option."""

import math

import pytest
import torch
import torch.nn as nn

from pesto import geometry, metrics
from pesto.errors import CheckpointError, ConfigError
from pesto.prune.groups import ElementGroups, PEGroups
from pesto.prune.regrow import global_prune, nm_update, prune_and_regrow, restrict, schedule
from pesto.prune.subnets import (SubnetMasks, SwitchBatchNorm2d, extract_subnet, make_subnets, select_subnet,
                                 subnet_masks)
from pesto.quant import ternarize, ternary_codes, ternary_layers, ternary_param
from pesto.train.ast_gc import AST, gradient_correction, parse_subnets
from pesto.train.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from pesto.train.loop import TrainConfig


def tiny(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Conv2d(4, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))


def ast_model(subnets=(0.3, 0.5, 0.7), seed=0, **kw):
    cfg = TrainConfig(mode="ast", subnets=list(subnets), cg=2, **kw)
    model = AST.prepare(tiny(seed), cfg.quant)
    return model, cfg


# -- eq 3.4 and the schedules ---------------------------------------------------------------
def test_gradient_correction_projects_only_conflicting_gradients():
    g = torch.tensor([1.0, 0.0])
    d = gradient_correction(g, torch.tensor([-1.0, 1.0]))      # conflict: g.ref = -1
    assert d == -1.0 and g.tolist() == [0.5, 0.5]               # (1,0) - (-1/2)(-1,1)
    assert float(torch.dot(g, torch.tensor([-1.0, 1.0]))) == 0.0  # now on the normal plane
    g = torch.tensor([1.0, 0.0])
    assert gradient_correction(g, torch.tensor([1.0, 1.0])) == 1.0 and g.tolist() == [1.0, 0.0]
    g = torch.tensor([1.0, 0.0])
    assert gradient_correction(g, torch.tensor([-1.0, 1.0]), apply=False) == -1.0 and g.tolist() == [1.0, 0.0]


def test_cosine_and_cubic_schedules_by_hand():
    assert schedule("cosine", 0.0, 0.5, 50, 0, 100) == pytest.approx(0.25)
    assert schedule("cosine", 0.0, 0.5, 25, 0, 100) == pytest.approx(0.5 - 0.25 * (1 + math.cos(math.pi / 4)))
    assert schedule("cosine", 0.1, 0.7, -5, 0, 100) == 0.1 and schedule("cosine", 0.1, 0.7, 150, 0, 100) == 0.7
    assert schedule("cosine", 0.5, 0.0, 100, 0, 100) == pytest.approx(0.0)           # regrow 0.5 -> 0
    assert schedule("cubic", 0.0, 0.8, 50, 0, 100) == pytest.approx(0.8 - 0.8 * 0.125)
    with pytest.raises(ConfigError, match="unknown schedule"):
        schedule("linear", 0, 1, 0, 0, 1)


def test_subnet_updates_are_staggered_and_reach_the_targets():
    model, cfg = ast_model(prune_every=6, prune_end=0.5)
    m = AST(model, cfg, total_steps=60)          # window: steps 0..30, offsets 0, 2, 4
    assert (m.t0, m.t1, m.offsets) == (0, 30, [0, 2, 4])
    due = {k: [t for t in range(60) if m._period(k, t) > m._period(k, t - 1)] for k in range(3)}
    assert due == {0: [0, 6, 12, 18, 24, 30], 1: [2, 8, 14, 20, 26, 30], 2: [4, 10, 16, 22, 28, 30]}
    assert m.sparsity_at(2, 30) == pytest.approx(0.7) and m.sparsity_at(1, 0) == 0.0
    assert m.regrow_at(0) == 0.5 and m.regrow_at(30) == pytest.approx(0.0)


# -- mask updates on tiny layers --------------------------------------------------------------
def test_prune_and_regrow_step_by_hand():
    mask = torch.tensor([[True, True, True, False], [True, False, True, True]])
    score = torch.tensor([[0.5, 0.1, 0.9, 0.0], [0.3, 0.0, 0.2, 0.8]])
    grad = torch.tensor([[0.0, 0.0, 0.0, 0.7], [0.0, 0.4, 0.0, 0.0]])
    new, moved = prune_and_regrow(mask, score, grad, 0.4)     # floor(0.4 * 6) = 2 move
    # out: the two weakest active (0.1 and 0.2); in: the two largest gradients of the inactive
    assert moved == 2
    assert new.tolist() == [[True, False, True, True], [True, True, False, True]]
    assert prune_and_regrow(mask, score, grad, 0.1)[1] == 0    # floor(0.6) = 0: unchanged


def test_global_prune_keeps_the_best_groups_and_one_per_layer():
    a = torch.tensor([[True, True], [True, True]])
    b = torch.tensor([[True, True, True]])
    sa = torch.tensor([[0.1, 0.2], [0.3, 0.05]])
    sb = torch.tensor([[0.9, 0.8, 0.7]])
    na, nb = global_prune([a, b], [sa, sb], keep=3)
    assert na.tolist() == [[False, False], [True, False]] and nb.tolist() == [[True, True, False]]  # 0.3 by the floor
    na, nb = global_prune([a, b], [sa, sb], keep=3, min_per_layer=0)
    assert int(na.sum()) == 0 and bool(nb.all())
    assert [m.tolist() for m in global_prune([a, b], [sa, sb], keep=9)] == [a.tolist(), b.tolist()]


def test_restrict_nests_a_mask_in_its_parent():
    parent = [torch.tensor([True, True, False, True])]
    child = [torch.tensor([True, False, True, False])]      # group 2 is outside the parent
    s = [torch.tensor([0.1, 0.5, 0.9, 0.3])]
    out = restrict(child, parent, 2, s)[0]
    assert out.tolist() == [True, True, False, False]         # keeps 0, fills with the best (1)
    assert not (out & ~parent[0]).any()


def test_nm_masks_on_pe_groups_and_elements():
    g = PEGroups(2)                                           # C = 8 -> G = 4
    w = torch.randn(3, 8, 3, 3)
    score = g.rms(w)
    runs = g.runs(score, 4)
    assert runs.shape == (3, 4)
    mask, _ = nm_update(torch.ones(3, 4, dtype=torch.bool), runs, torch.zeros(3, 4), 1, 1.0, 0.5)
    assert mask.sum(1).tolist() == [1, 1, 1] and (runs[mask] == runs.max(1).values).all()
    full = g.unruns(mask, w.shape)
    assert full.shape == (3, 4) and full.sum(1).tolist() == [1, 1, 1]   # every channel: the same work
    with pytest.raises(ConfigError, match="M=3 keeps N of every 3 consecutive PE groups"):
        g.runs(score, 3)
    # element N:M (NVIDIA's layout): runs of M consecutive input channels at one (n, kh, kw)
    e = ElementGroups()
    r = e.runs(w.abs(), 4)
    m, _ = nm_update(torch.ones_like(r, dtype=torch.bool), r, torch.zeros_like(r), 2, 1.0, 0.0)
    emask = e.unruns(m, w.shape)
    assert emask.shape == w.shape
    assert (emask.permute(0, 2, 3, 1).reshape(-1, 4).sum(1) == 2).all()
    gemm = e.gemm_matrix(emask)                               # (N, Kh*Kw*C): what to_sparse_semi_structured takes
    assert gemm.shape == (3, 72) and (gemm.reshape(3, -1, 4).sum(-1) == 2).all()
    assert torch.equal(gemm[0, :8], emask[0, :, 0, 0])       # C fastest
    # a scheduled fraction of runs goes N:M first where it loses least
    score = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.1, 0.1, 0.1, 0.9]])
    m, _ = nm_update(torch.ones(2, 4, dtype=torch.bool), score, torch.zeros(2, 4), 1, 0.5, 0.0)
    assert m.tolist() == [[True] * 4, [False, False, False, True]]


# -- the sub-net model: masks, BN sets, the shared-codes rule ----------------------------------
def test_shared_codes_rule_delta_from_the_shared_weight_alpha_per_subnet():
    model, _ = ast_model()
    name, layer, cg = ternary_layers(model)[0]
    p = ternary_param(layer)
    w = layer.parametrizations.weight.original
    p.masks[1].zero_()
    p.masks[1][:, 0] = True                                   # sub-net 1: first group of every channel
    codes_all, _ = ternarize(w)
    delta = 0.05 * w.detach().abs().max()
    for k in (0, 1):
        select_subnet(model, k)
        codes, alpha = ternary_codes(layer)
        keep = geometry.expand_group_mask(p.masks[k], cg, w.shape[1], 3, 3)
        assert torch.equal(codes, codes_all * keep)           # the same codes, masked
        sel = (w.detach().abs() > delta) & keep
        assert float(alpha) == pytest.approx(float(w.detach().abs()[sel].mean()))
        assert torch.equal(layer.weight, alpha * codes.float())   # the forward sees alpha_k * codes * mask_k
    select_subnet(model, 0)
    a0 = float(ternary_codes(layer)[1])
    select_subnet(model, 1)
    assert float(ternary_codes(layer)[1]) != a0


def test_switching_selects_the_subnets_batchnorm_and_matches_the_extracted_net():
    model, _ = ast_model()
    bns = [m for m in model.modules() if isinstance(m, SwitchBatchNorm2d)]
    assert len(bns) == 3 and all(len(b.bns) == 3 for b in bns)
    for b in bns:
        for k, bn in enumerate(b.bns):
            bn.running_mean.fill_(0.1 * k)
            bn.weight.data.fill_(1.0 + k)
    ternary_param(ternary_layers(model)[1][1]).masks[2][:, 1] = False
    model.eval()
    x = torch.randn(2, 1, 6, 6)
    outs = []
    for k in (2, 0, 1):
        assert model.select_subnet(k) == k
        assert all(b.active == k for b in bns)
        y = model(x)
        assert torch.equal(y, extract_subnet(model, k).eval()(x))
        outs.append(y)
    assert not torch.equal(outs[0], outs[1]) and not torch.equal(outs[1], outs[2])
    assert select_subnet(model, "s50") == 1
    plain = extract_subnet(model, "s70")
    assert not any(isinstance(m, SwitchBatchNorm2d) for m in plain.modules())
    assert "1.weight" in dict(plain.named_parameters())       # the plain layer names again


def test_one_step_updates_only_the_active_subnet():
    model, cfg = ast_model(prune_every=1000, prune_start=0.9, prune_end=1.0)
    m = AST(model, cfg, total_steps=100)
    layers = ternary_layers(model)
    for _, layer, _ in layers:                                 # sub-net 1 drops some groups
        ternary_param(layer).masks[1][:, 0] = False
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=0.1)
    x, y = torch.randn(4, 1, 6, 6), torch.tensor([0, 1, 2, 0])
    m.train_step(model, opt, x, y, 0)                         # sub-net 0: fills the momentum buffers
    before = {k: v.clone() for k, v in model.state_dict().items()}
    m.train_step(model, opt, x, y, 1)                         # sub-net 1
    after = model.state_dict()
    for name, layer, cg in layers:
        key = f"{name}.parametrizations.weight.original"
        off = ~geometry.expand_group_mask(ternary_param(layer).masks[1], cg, 4 if name == "3" else 8, 3, 3)
        assert torch.equal(after[key][off], before[key][off])     # no update, despite momentum and decay
        assert not torch.equal(after[key][~off], before[key][~off])
    for i in (1, 4, 7):
        for k in (0, 2):                                       # the other sub-nets' BN: untouched
            for stat in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
                assert torch.equal(after[f"{i}.bns.{k}.{stat}"], before[f"{i}.bns.{k}.{stat}"])
        assert not torch.equal(after[f"{i}.bns.1.running_mean"], before[f"{i}.bns.1.running_mean"])
        assert not torch.equal(after[f"{i}.bns.1.weight"], before[f"{i}.bns.1.weight"])


def test_gc_step_projects_inside_the_active_subnet_and_logs_conflicts():
    model, cfg = ast_model(prune_every=1000, prune_start=0.9, prune_end=1.0)
    m = AST(model, cfg, total_steps=100)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)        # lr 0: look at the gradients only
    x = torch.randn(4, 1, 6, 6)
    m.train_step(model, opt, x, torch.tensor([0, 1, 2, 0]), 0)
    ref = {n: g.clone() for n, g in m.prev.items()}
    name, layer, cg = ternary_layers(model)[0]
    ternary_param(layer).masks[1][:, 1] = False
    m.begin_step(1)
    m.forward_backward(model, opt, x, torch.tensor([2, 0, 1, 1]))   # other labels: conflicts likely
    raw = {n: p.grad.clone() for n, p in m.shared if p.grad is not None}
    m.before_update(opt)
    assert m.gc_trace[-1][:2] == [1, 1] and m.gc_trace[-1][3] == len(raw)
    negatives = 0
    for n, p in m.shared:
        keep = None
        if n in m.keep_of:
            keep = geometry.expand_group_mask(ternary_param(layer).masks[1], cg, 4, 3, 3) if n.startswith(name) \
                else torch.ones_like(p.grad, dtype=torch.bool)
        r = ref[n] * keep if keep is not None else ref[n]
        d = float(torch.dot(raw[n].flatten(), r.flatten()))
        if d < 0:
            negatives += 1
            assert abs(float(torch.dot(p.grad.flatten(), r.flatten()))) < 1e-6 * float(r.norm() * raw[n].norm())
            if keep is not None:
                assert (p.grad[~keep] == 0).all()             # the corrected gradient stays in the sub-net
        else:
            assert torch.equal(p.grad, raw[n])
    assert m.gc_trace[-1][2] == negatives and 0 < negatives < len(raw)   # both cases occur
    m.after_update(opt)


def test_masks_round_trip_through_a_checkpoint(tmp_path):
    model, cfg = ast_model()
    for k, (_, layer, _) in enumerate(ternary_layers(model)):
        ternary_param(layer).masks[2][:, k] = False
    model.select_subnet(2)
    x = torch.randn(2, 1, 6, 6)
    model(x)                                                   # BN statistics of sub-net 2 move
    model.eval()
    want = model(x)
    path = tmp_path / "ast.pt"
    save_checkpoint(path, model, model_cfg=dict(name="resnet20", in_channels=1, num_classes=3, input_size=6),
                    quant=cfg.quant, data=dict(dataset="fashion-mnist", mean=[0.0], std=[1.0]), epoch=1)
    ckpt = load_checkpoint(path)
    assert ckpt["quant"]["subnets"] == ["s30", "s50", "s70"] and ckpt["quant"]["granularity"] == "group"
    back = AST.prepare(tiny(1), ckpt["quant"])
    back.load_state_dict(ckpt["state_dict"])
    a, b = subnet_masks(model), subnet_masks(back)
    assert a.layers.keys() == b.layers.keys()
    assert all(torch.equal(a[n], b[n]) for n in a.layers)
    back.eval().select_subnet("s70")
    assert torch.equal(back(x), want)
    assert SubnetMasks(back).group_sparsity(2) == pytest.approx((8 + 8) / (8 * 2 + 8 * 4))  # a column per layer
    ms = metrics.subnet_metrics(back)
    assert [s["name"] for s in ms] == ["s30", "s50", "s70"] and ms[2]["mask_sparsity"] > 0
    assert back.active_subnet == 2                             # subnet_metrics restores the selection


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, match", [
    (dict(subnets=[]), r"at least one sub-net \(K = 0\)"),
    (dict(subnets=[0.3, 1.0]), r"out of \[0, 1\)"),
    (dict(subnets=[-0.1]), r"out of \[0, 1\)"),
    (dict(subnets=["x"]), "is not a group sparsity"),
    (dict(subnets=[0.5, 0.3], scheme="cs"), "increasing order"),
    (dict(subnets=[0.3, 0.3]), "distinct"),
    (dict(subnets=[0.3], scheme="xx"), "unknown scheme 'xx'"),
    (dict(subnets=[0.3], pattern="blocks"), "unknown pattern 'blocks'"),
    (dict(subnets=["2:4"], pattern="nm", scheme="cs"), "completely-subset scheme is for --pattern group"),
    (dict(subnets=["4:2"], pattern="nm"), "1 <= N <= M"),
    (dict(subnets=["2/4"], pattern="nm"), "takes N:M"),
    (dict(subnets=[0.3], joint=True, gc=True), "drop --gc"),
    (dict(subnets=[0.3], sparsity_init=0.5), "above the lowest sub-net target"),
    (dict(subnets=[0.3], prune_start=0.8, prune_end=0.5), "prune-start"),
    (dict(subnets=[0.3], regrow=1.0), "regrow"),
    (dict(subnets=[0.3], prune_every=0), "prune-every"),
])
def test_bad_ast_options_are_clear_errors(kw, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(mode="ast", **kw)


def test_other_modes_refuse_ast_options_and_select_subnet_refuses_plain_models(tmp_path):
    with pytest.raises(ConfigError, match="option .subnets. .from the recipe or the command line. is for --mode ast"):
        TrainConfig(mode="wpc", subnets=[0.3])
    with pytest.raises(ConfigError, match="option .joint. .* is for --mode ast"):
        TrainConfig(mode="tern", joint=True)
    from pesto.quant import ternarize_model
    plain = ternarize_model(tiny(), cg=2)
    with pytest.raises(CheckpointError, match="no sub-net masks.*--mode ast"):
        select_subnet(plain, 0)
    path = tmp_path / "wpc.pt"
    from pesto.models import build_model
    net = ternarize_model(build_model("resnet20", 1, 10, 28), cg=16)
    save_checkpoint(path, net, model_cfg=dict(name="resnet20", in_channels=1, num_classes=10, input_size=28),
                    quant=dict(mode="wpc", cg=16, keep_first_last=True, cg_overrides={}),
                    data=dict(dataset="fashion-mnist", mean=[0.0], std=[1.0]))
    with pytest.raises(CheckpointError, match="no sub-net masks"):
        select_subnet(str(path), 1)
    model, _ = ast_model()
    with pytest.raises(ConfigError, match=r"no sub-net 3: this model has 3 \(s30, s50, s70\)"):
        select_subnet(model, 3)
    with pytest.raises(ConfigError, match="M=4 keeps N of every 4 consecutive PE groups"):
        cfg = TrainConfig(mode="ast", subnets=["2:4"], pattern="nm", cg=2)
        AST(AST.prepare(tiny(), cfg.quant), cfg, 10)             # the first layer has 2 groups
    assert [s.name for s in parse_subnets("nm", ["2:4", "1:8"])] == ["n2m4", "n1m8"]
    with pytest.raises(ConfigError, match="1..16 sub-nets"):
        make_subnets(ternarize_model(tiny(), cg=2), [f"n{i}" for i in range(17)])
