"""The multi-sub-net contract (docs/subnets.md): group masks over one set of codes, per-sub-net
output stages, format 1.1, the reference running any sub-net, merge_subnets."""

import json

import numpy as np
import pytest
import torch

from pesto import artifact as A
from pesto import geometry, reference
from pesto.errors import ArtifactError, ConfigError
from pesto.ir import SharedTernaryConv, SubnetStage, TernaryConv
from pesto.sim.networks import random_views

ASSET = "sw/pesto/assets/resnet20_fmnist_wpc.pt"


@pytest.fixture(scope="module")
def images():
    from pesto.data import load_splits
    _, test = load_splits("fashion-mnist", augment=False)
    return test.images[:16].numpy()


@pytest.fixture(scope="module")
def base(images):
    from pesto.export import export_model
    return export_model(ASSET, images, num_calibration=16, verify=0)


@pytest.fixture(scope="module")
def multi(base):
    views = random_views(base)
    metas = [{"target_group_sparsity": 1 - f} for f in (0.9, 0.6, 0.3)]
    return views, A.merge_subnets(views, ["dense", "mid", "sparse"], metas)


def test_expand_group_mask_inverts_the_indexer_numpy_and_torch():
    rng = np.random.default_rng(1)
    mask = rng.random((5, 3)) < 0.5            # 5 channels, 3 groups of cg 4 over 10 inputs
    full = geometry.expand_group_mask(mask, 4, 10, 3, 3)
    assert full.shape == (5, 10, 3, 3)
    assert full[:, 8:].all(axis=(1, 2, 3)).tolist() == mask[:, 2].tolist()   # the partial last group
    assert (geometry.group_indexer(full.astype(np.int8), 4) == mask).all()
    t = geometry.expand_group_mask(torch.from_numpy(mask), 4, 10, 3, 3)
    assert (t.numpy() == full).all()
    with pytest.raises(ConfigError, match="groups per channel"):
        geometry.expand_group_mask(mask, 4, 16)


def _shared(issues, codes=None):
    codes = np.array([[[[1]], [[0]], [[-1]], [[1]]], [[[0]], [[0]], [[1]], [[0]]]], dtype=np.int8) \
        if codes is None else codes                                           # (2, 4, 1, 1), cg 2
    stages = [SubnetStage(np.array(i, dtype=bool), [1, 1], [0, 0], [k, k]) for k, i in enumerate(issues)]
    return SharedTernaryConv("t", codes, stages, cg=2, f_in=0, f_out=0)


def test_shared_layer_subnet_masks_codes_and_keeps_its_stage():
    s = _shared([[[1, 1], [0, 1]], [[0, 1], [0, 1]]])     # storage: [[1, 1], [0, 1]]
    assert s.storage.tolist() == [[True, True], [False, True]]
    v1 = s.subnet(1)
    assert v1.codes[:, :, 0, 0].tolist() == [[0, 0, -1, 1], [0, 0, 1, 0]]
    assert v1.bias.tolist() == [1, 1] and s.subnet(0).bias.tolist() == [0, 0]
    x = np.arange(4, dtype=np.int16).reshape(1, 4, 1, 1)
    assert reference.run_conv(x, v1).reshape(-1).tolist() == [0 * 0 - 2 + 3 + 1, 2 + 1]


@pytest.mark.parametrize("issues,match", [
    ([[[1, 1], [1, 1]], [[1, 1], [0, 1]]], "no stored codes"),     # (1, 0) holds only zeros
    ([[[1, 0], [0, 1]], [[1, 0], [0, 1]]], "issued by no"),          # (0, 1) stored, never issued
    ([[[1, 1, 0], [0, 1, 0]]], "issue map has shape"),
])
def test_shared_layer_refuses_inconsistent_maps(issues, match):
    with pytest.raises(ConfigError, match=match):
        _shared(issues)


def test_merged_subnets_give_back_every_view(multi):
    views, art = multi
    assert art.num_subnets == 3 and art.subnet_names == ["dense", "mid", "sparse"]
    for k, view in enumerate(views):
        got = art.subnet(k)
        assert got.meta["subnet"]["name"] == art.subnet_names[k]
        for a, b in zip(got.layers, view.layers):
            assert (a.codes == b.codes).all() and (a.mult == b.mult).all() and (a.bias == b.bias).all()
        assert np.array_equal(got.node("conv1").arrays["bias"], view.node("conv1").arrays["bias"])
    # what is equal across sub-nets is stored once; the first conv's bias differs per sub-net
    conv1 = art.node("conv1")
    assert "weight" in conv1.arrays and "bias" not in conv1.arrays and len(conv1.subnet_arrays) == 3
    stored = art.storage_stats()
    issued = [s["nnz_groups"] for s in art.subnet_stats()]
    assert issued[0] > issued[1] > issued[2] and sum(s["nnz_groups"] for s in stored) >= issued[0]


def test_reference_runs_any_subnet_bit_exact_with_its_view(multi, images):
    views, art = multi
    outs = []
    for k, name in enumerate(art.subnet_names):
        got = reference.run(art, images[:4], subnet=name)
        assert np.array_equal(got, reference.run(views[k], images[:4]))
        outs.append(got)
    assert not np.array_equal(outs[0], outs[2])          # the sub-nets really differ
    with pytest.raises(ConfigError, match="say which one"):
        reference.run(art, images[:1])


def test_format_1_1_round_trip_and_1_0_layout_for_a_single_net(multi, base, tmp_path):
    _, art = multi
    path = A.save(art, tmp_path / "multi.pesto")
    back = A.load(path)
    assert back.subnet_names == art.subnet_names and back.subnets[2].meta == {"target_group_sparsity": 0.7}
    for k in range(3):
        for a, b in zip(back.subnet(k).layers, art.subnet(k).layers):
            assert (a.codes == b.codes).all() and (a.shift == b.shift).all()
    assert A.to_bytes(back) == A.to_bytes(art)
    manifest = _manifest(A.to_bytes(art))
    tconv = next(n for n in manifest["nodes"] if n["op"] == "tconv")
    assert set(tconv["blobs"]) == {"indexer", "codes"}          # no base stage: a 1.0 reader refuses
    assert [sorted(s) for s in tconv["subnet_blobs"]] == [["bias", "issue", "mult", "shift"]] * 3
    single = _manifest(A.to_bytes(base))
    assert "subnets" not in single and all("subnet_blobs" not in n for n in single["nodes"])


def test_views_of_a_multi_artifact_save_as_plain_artifacts(multi, tmp_path):
    _, art = multi
    view = A.load(A.save(art.subnet("mid"), tmp_path / "mid.pesto"))
    assert view.num_subnets == 1 and view.subnet_names == ["mid"]
    assert all((a.codes == b.codes).all() for a, b in zip(view.layers, art.subnet(1).layers))


def test_subnet_selection_errors_name_the_choices(multi):
    _, art = multi
    with pytest.raises(ConfigError, match="out of range.*0..2"):
        art.subnet(3)
    with pytest.raises(ConfigError, match="'dense'"):
        art.subnet("nope")
    with pytest.raises(ConfigError, match="use artifact.subnet"):
        art.layers


def test_merge_refuses_codes_that_differ_in_a_shared_group(base):
    a, b = random_views(base, keep=(1.0, 1.0))
    node = next(n for n in b.nodes if n.op == "tconv")
    lay = node.layer
    codes = lay.codes.copy()
    n, c = np.argwhere(codes[:, :, 0, 0] != 0)[0]
    codes[n, c, 0, 0] = -codes[n, c, 0, 0]
    node.layer = TernaryConv(lay.name, codes, lay.mult, lay.shift, lay.bias, stride=lay.stride,
                             padding=lay.padding, cg=lay.cg, relu=lay.relu, f_in=lay.f_in, f_out=lay.f_out)
    with pytest.raises(ConfigError, match="must share their codes"):
        A.merge_subnets([a, b], ["a", "b"])
    next(n for n in b.nodes if n.op == "quantize").frac += 1
    with pytest.raises(ConfigError, match="shared formats"):
        A.merge_subnets([a, b], ["a", "b"])


def _manifest(data: bytes) -> dict:
    _, _, _, _, mlen, _ = A.HEADER.unpack_from(data)
    return json.loads(data[A.HEADER.size:A.HEADER.size + mlen])


def _rewrite(data: bytes, edit) -> bytes:
    """The file with its manifest edited and the checksum recomputed (reaches the structure checks)."""
    _, major, minor, flags, mlen, blen = A.HEADER.unpack_from(data)
    manifest = _manifest(data)
    edit(manifest)
    m = json.dumps(manifest).encode()
    m += b" " * ((-len(m)) % 8)
    blobs = data[A.HEADER.size + mlen:A.HEADER.size + mlen + blen]
    body = A.HEADER.pack(A.MAGIC, major, minor, flags, len(m), blen) + m + blobs
    return body + bytes.fromhex(A.sha256(body))


@pytest.mark.parametrize("edit,match", [
    (lambda m: m["subnets"].pop() and m["subnets"].pop(), "sub-nets listed|per-sub-net blob sets"),
    (lambda m: m["subnets"][1].update(name="dense"), "must be unique"),
    (lambda m: m["subnets"][1].update(name="a b"), "must be unique, 1-32"),
    (lambda m: m["subnets"][0].update(meta=[1]), "meta must be an object"),
    (lambda m: next(n for n in m["nodes"] if n["op"] == "tconv")["subnet_blobs"][0].pop("mult"), "expected"),
    (lambda m: next(n for n in m["nodes"] if n["op"] == "tconv")["subnet_blobs"].pop(), "blob sets"),
    (lambda m: m.pop("subnets"), "per-sub-net blob sets"),
])
def test_loader_refuses_broken_subnet_manifests(multi, edit, match):
    _, art = multi
    with pytest.raises(ArtifactError, match=match):
        A.from_bytes(_rewrite(A.to_bytes(art), edit))


def test_loader_refuses_an_issue_map_outside_the_storage_map(multi):
    _, art = multi
    data = bytearray(A.to_bytes(art))
    manifest = _manifest(bytes(data))
    node = next(n for n in manifest["nodes"] if n["op"] == "tconv" and n["attrs"]["nnz_groups"] < 16 * n["attrs"]["groups"])
    spec = manifest["blobs"][node["subnet_blobs"][0]["issue"]]
    start = A.HEADER.size + A.HEADER.unpack_from(bytes(data))[4] + spec["offset"]
    data[start:start + spec["nbytes"]] = b"\xff" * (spec["nbytes"] - 1) + bytes([data[start + spec["nbytes"] - 1]])
    body = bytes(data[:-32])
    with pytest.raises(ArtifactError, match="no stored codes|past its last group"):
        A.from_bytes(body + bytes.fromhex(A.sha256(body)))


def test_accelerator_runs_and_switches_subnets_on_ref(multi, images):
    from pesto.driver import Accelerator
    _, art = multi
    acc = Accelerator(art, backend="ref", subnet="sparse")
    assert np.array_equal(acc.execute(images[:2]), reference.run(art, images[:2], subnet=2))
    assert acc.select_subnet(0) == 0
    assert np.array_equal(acc.execute(images[:2]), reference.run(art, images[:2], subnet="dense"))
    with pytest.raises(ConfigError, match="out of range"):
        acc.select_subnet(5)
