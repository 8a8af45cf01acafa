"""Deploying a transferred network: the Rep-Net grafted onto the backbone's own artifact.

The backbone's nodes are copied as they are -- every accelerated ``tconv`` layer keeps its
codes, indexer, output stage and formats byte for byte, so the bitstream and the stored codes
stay exactly as they were -- and the new parts are host nodes of the existing ops:

* each Rep-Net block: ``conv`` (3x3, its BN folded in, ReLU) -> ``conv`` (1x1, BN folded in)
  [-> ``avgpool`` (global) -> ``flatten``], float32 on the host, fed by the input image or the
  previous connector;
* each connector on an int16 backbone value X (format f): ``dequantize`` X -> float ``add`` of
  the Rep-Net's feature -> ``quantize`` back to f (saturating), and the backbone's later nodes read
  that instead of X; on a float value (the head) the ``add`` alone;
* the new classifier, a ``linear`` on the head connector, replaces the backbone's.

``tconv_layers(data)`` cuts the accelerated layers out of an artifact file (manifest entry minus
its graph wiring, plus its blobs' bytes), which is how the backbone artifact's identity is
fingerprinted and checked.
"""

from __future__ import annotations

import copy
import json
import types
import warnings

import numpy as np
import torch

from .. import artifact as art_mod
from ..artifact import Artifact, Node
from ..errors import ArtifactError, ConfigError
from ..util import sha256

DEPLOYABLE = ("repnet", "last")


# -- the backbone's artifact --------------------------------------------------------------
def tconv_layers(data: bytes) -> dict[str, bytes]:
    """{tconv node: bytes} of an artifact file: the node's name, frac and attrs (canonical JSON,
    without its ``inputs``: the graph wiring) followed by the raw bytes of each of its blobs."""
    _, _, _, _, mlen, _ = art_mod.HEADER.unpack_from(data)
    start = art_mod.HEADER.size
    manifest = json.loads(data[start:start + mlen].decode("utf-8"))
    base = start + mlen
    out = {}
    for entry in manifest["nodes"]:
        if entry["op"] != "tconv":
            continue
        head = json.dumps({k: entry[k] for k in ("name", "op", "frac", "attrs")}, sort_keys=True).encode()
        blobs = []
        for key in sorted(entry["blobs"]):
            spec = manifest["blobs"][entry["blobs"][key]]
            blobs.append(data[base + spec["offset"]:base + spec["offset"] + spec["nbytes"]])
        out[entry["name"]] = head + b"".join(blobs)
    return out


def tconv_fingerprint(artifact: Artifact) -> str:
    """SHA-256 over the accelerated layers (``tconv_layers``) of ``artifact``, in order."""
    layers = tconv_layers(art_mod.to_bytes(artifact))
    return sha256(b"".join(name.encode() + b"\0" + body for name, body in layers.items()))


def export_options(cg=None, act_bits=16, frac_bits=None, headroom_bits=1, calib_data="fashion-mnist",
                   calib_images=256) -> dict:
    return {"cg": cg, "act_bits": act_bits, "frac_bits": frac_bits, "headroom_bits": headroom_bits,
            "calib_data": str(calib_data), "calib_images": int(calib_images)}


def backbone_artifact(backbone_ckpt: dict, artifact=None, options: dict | None = None) -> Artifact:
    """The backbone's artifact: the file/Artifact given (checked to be this backbone's), or the
    one `pesto export-to-fpga` makes of the backbone with ``options`` (export_options)."""
    if artifact is not None:
        art = artifact if isinstance(artifact, Artifact) else art_mod.load(artifact)
        want = backbone_ckpt.get("state_sha256")
        have = art.meta.get("model", {}).get("state_sha256")
        if want and have and want != have:
            raise ArtifactError(f"the backbone artifact was exported from weights {have[:12]}..., not from the "
                                f"backbone {backbone_ckpt.get('path')} ({want[:12]}...); export that backbone")
        return art
    from ..export.cli import load_calibration
    from ..export.exporter import export_model
    o = dict(export_options(), **(options or {}))
    calib = load_calibration(o["calib_data"], o["calib_images"])
    return export_model(backbone_ckpt, calib, cg=o["cg"], act_bits=o["act_bits"], frac_bits=o["frac_bits"],
                        headroom_bits=o["headroom_bits"], num_calibration=o["calib_images"], verify=0)


def backbone_values(model, input_shape, mean, std) -> dict[str, str]:
    """{graph op: artifact node holding its value} of the backbone's export (a structural map: the
    node names do not depend on the calibration, so four random images calibrate it)."""
    from ..export.exporter import export_model
    values: dict[str, str] = {}
    images = np.random.default_rng(0).random((4, *input_shape), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_model((model, {"name": "backbone", "source": "values", "mode": None}), images, mean=mean, std=std,
                     verify=0, values=values)
    return values


def connector_formats(artifact: Artifact, values: dict, connectors) -> list[int | None]:
    """The int16 format the backbone artifact carries each connector's value in (None: float on the
    host, the head). A float value that the artifact quantizes right away takes that format."""
    out = []
    for c in connectors:
        node = artifact.node(values[c.op])
        if c.kind == "head":
            out.append(None)
        elif node.frac is not None:
            out.append(node.frac)
        else:
            users = [n for n in artifact.nodes if node.name in n.inputs]
            fracs = {n.frac for n in users if n.op == "quantize"}
            out.append(fracs.pop() if users and len(fracs) == 1 and all(n.op == "quantize" for n in users) else None)
    return out


def backbone_formats(artifact: Artifact, values: dict, graph_ops) -> dict[str, int]:
    """{fx node: int16 format} of every backbone value the artifact holds in int16: the output of
    each ``tconv`` and int ``add`` node (at the last op of its fused chain), and float values the
    artifact quantizes for the engine right away (the stem's output)."""
    last: dict[str, object] = {}
    for op in graph_ops:   # the latest op mapped to a node holds its value (an identity only aliases it)
        if op.name in values and op.kind != "identity":
            last[values[op.name]] = op
    out = {}
    for name, op in last.items():
        node = artifact.node(name)
        if node.op in ("tconv", "add") and node.frac is not None:
            out[op.fx_node.name] = node.frac
        elif node.frac is None and node.op not in ("input",):
            users = [n for n in artifact.nodes if name in n.inputs]
            fracs = {n.frac for n in users if n.op == "quantize"}
            if users and len(fracs) == 1 and all(n.op == "quantize" for n in users):
                out[op.fx_node.name] = fracs.pop()
    return out


# -- the graft ------------------------------------------------------------------------------
def _folded(conv, bn, name):
    from ..export.exporter import _bn_affine
    scale, shift = _bn_affine(conv, types.SimpleNamespace(module=bn, name=name))
    w = conv.weight.detach().double() * scale.view(-1, 1, 1, 1)
    return {"weight": w.float().numpy(), "bias": shift.float().numpy()}


def _block_nodes(block, i: int, src: str) -> list[Node]:
    c1, c2 = block.conv1, block.conv2
    nodes = [Node(f"rep{i}.conv1", "conv", [src], attrs={"stride": c1.stride[0], "padding": c1.padding[0], "relu": True},
                  arrays=_folded(c1, block.bn1, f"rep{i}.bn1")),
             Node(f"rep{i}.conv2", "conv", [f"rep{i}.conv1"], attrs={"stride": 1, "padding": 0, "relu": False},
                  arrays=_folded(c2, block.bn2, f"rep{i}.bn2"))]
    if block.pool:
        nodes.append(Node(f"rep{i}.pool", "avgpool", [nodes[-1].name], attrs={"kernel": None, "stride": None}))
    if block.flatten:
        nodes.append(Node(f"rep{i}.flatten", "flatten", [nodes[-1].name]))
    return nodes


def graft(backbone: Artifact, values: dict, net) -> Artifact:
    """The backbone artifact with ``net``'s Rep-Net, connectors and classifier (see the module doc)."""
    net = net.eval()
    if backbone.subnets:
        raise ConfigError(f"the backbone artifact holds {len(backbone.subnets)} sub-nets "
                          f"({', '.join(backbone.subnet_names)}); a transfer grafts onto one network: pass "
                          f"artifact.subnet(k) of the sub-net the Rep-Net was trained on")
    conns = net.connectors
    cls = backbone.node(backbone.output)
    if cls.op != "linear":
        raise ArtifactError(f"the backbone artifact ends in a {cls.op} node, not its linear classifier")
    at = {values[c.op]: i for i, c in enumerate(conns)}
    head = values[conns[-1].op] if conns else cls.inputs[0]
    if conns and cls.inputs[0] != head:
        raise ArtifactError(f"the backbone artifact's classifier reads {cls.inputs[0]!r}, not the head {head!r}")
    nodes: list[Node] = []
    rename: dict[str, str] = {}
    p_src = "input"
    d = net.design
    for node in backbone.nodes:
        if node is cls:
            continue
        nodes.append(Node(node.name, node.op, [rename.get(n, n) for n in node.inputs], dict(node.attrs),
                          dict(node.arrays), node.layer, node.frac))
        i = at.get(node.name)
        if i is None:
            continue
        c, x = conns[i], nodes[-1]
        block = _block_nodes(net.repnet.blocks[i], i, p_src)
        nodes += block
        p = block[-1].name
        if c.kind != "head" and not (d.to_backbone or d.to_repnet):
            p_src = p
            continue
        xf = x.name
        if x.frac is not None:
            nodes.append(Node(f"conn{i}.dq", "dequantize", [x.name]))
            xf = nodes[-1].name
        nodes.append(Node(f"conn{i}.add", "add", [xf, p], attrs={"relu": False}))
        s = nodes[-1].name
        if c.kind == "head":
            head = s
            continue
        if d.to_backbone:
            if x.frac is not None:
                nodes.append(Node(f"conn{i}.q", "quantize", [s], frac=x.frac))
                rename[x.name] = nodes[-1].name
            else:
                rename[x.name] = s
        p_src = s if d.to_repnet else p
    w = net.classifier.weight.detach().float().numpy()
    b = net.classifier.bias.detach().float().numpy()
    nodes.append(Node("classifier", "linear", [rename.get(head, head)], attrs={"relu": False},
                      arrays={"weight": w, "bias": b}))
    meta = copy.deepcopy(backbone.meta)
    meta["num_classes"] = int(w.shape[0])
    meta["model"]["name"] = f"{meta['model'].get('name', 'backbone')}+{net.method_name}"
    meta["transfer"] = {
        "method": net.method_name, "design": net.design_name if net.repnet is not None else None,
        "connectors": [{"op": c.op, "node": values[c.op], "kind": c.kind, "frac": f}
                       for c, f in zip(conns, net.fracs)],
        "host_parameters": int(sum(p.numel() for n, p in net.named_parameters()
                                   if n.startswith(("repnet.", "classifier.")))),
        "backbone_tconv_sha256": tconv_fingerprint(backbone),
    }
    return Artifact(nodes, "classifier", meta)


def export_transferred(tckpt, backbone=None, artifact=None, verify_images=None, progress: bool = False) -> Artifact:
    """A transfer checkpoint (path or dict) -> its artifact (save with pesto.artifact.save).

    backbone: the backbone checkpoint (path or dict) if it moved since training; artifact: the
    backbone's artifact (path or Artifact) instead of exporting the backbone again with the
    options recorded at training. Either way its accelerated layers must be the ones the Rep-Net
    was trained against (same fingerprint). verify_images: raw images (B, C, H, W) to compare
    the integer pipeline with the torch model on (recorded in meta.export.verification).
    """
    from .checkpoint import build_net, load_backbone, load_transfer
    t = tckpt if isinstance(tckpt, dict) else load_transfer(tckpt)
    if t["method"] not in DEPLOYABLE:
        raise ConfigError(f"a {t['method']!r} transfer changes the backbone's weights, so its artifact could not "
                          f"keep the backbone's accelerated layers; deployable methods: {', '.join(DEPLOYABLE)}")
    bb = load_backbone(t, backbone)
    net = build_net(t, bb)
    base = backbone_artifact(bb, artifact, t["backbone_artifact"]["options"])
    want = t["backbone_artifact"]["tconv_sha256"]
    if tconv_fingerprint(base) != want:
        raise ArtifactError("the backbone artifact's accelerated layers differ from those the Rep-Net was trained "
                            "against (other export options or calibration images); pass that artifact with "
                            "--backbone-artifact, or export with the options recorded in the checkpoint "
                            f"({t['backbone_artifact']['options']})")
    values = backbone_values(net.backbone, net.input_shape, base.meta["input"]["mean"], base.meta["input"]["std"])
    fracs = connector_formats(base, values, net.connectors)
    from .connectors import backbone_ops
    formats = backbone_formats(base, values, backbone_ops(net.backbone, net.input_shape))
    if fracs != net.fracs or formats != net.value_fracs:
        raise ArtifactError(f"the backbone artifact's int16 formats (connectors {fracs}) differ from those the "
                            f"Rep-Net was trained with ({net.fracs}); pass the artifact it was trained against")
    out = graft(base, values, net)
    out.meta["model"]["source"] = str(t.get("path", "transfer checkpoint"))
    if verify_images is not None:
        out.meta["export"]["verification"] = verify(net, out, verify_images)
    return out


@torch.no_grad()
def verify(net, artifact: Artifact, images) -> dict:
    """Integer pipeline (reference) vs the torch TransferNet on raw images: top-1 agreement (percent, as
    the exporter's), logits."""
    from ..reference.network import normalize, run
    x = normalize(artifact, images)
    want = net.eval()(torch.from_numpy(x)).double().numpy()
    got = run(artifact, x, normalized=True).astype(np.float64)
    return {"images": int(len(x)), "top1_agreement": float(100 * (want.argmax(1) == got.argmax(1)).mean()),
            "max_abs_logit_error": float(np.abs(want - got).max()), "logit_range": float(np.abs(want).max())}
