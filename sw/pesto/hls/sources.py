"""Where `pesto hls` gets its layers and test vectors: an exported artifact (every accelerated
layer, fed the int16 tensors the integer reference gives it on real or seeded images) or layer
configurations (the table 7 layers, JSON specs of synthetic layers)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DatasetError
from ..ir import TernaryConv
from ..reference.layer import run_conv
from ..validate import check_float, check_int
from .vectors import layer_case

FMNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


@dataclass
class Workload:
    """Layers to size the build for, and the testbench cases that exercise them."""

    shapes: list = field(default_factory=list)    # (TernaryConv, h, w)
    cases: list = field(default_factory=list)     # VectorCase
    layers: list = field(default_factory=list)    # one summary dict per layer (pesto_hls.json)
    source: str = ""

    def add(self, layer: TernaryConv, xs: np.ndarray, lanes: int, dense: bool, prefix: str = "") -> None:
        """Cases for ``layer`` on each int16 input in ``xs`` (B, C, H, W), skipping on (and off)."""
        h, w = xs.shape[2:]
        self.shapes.append((layer, h, w))
        self.layers.append({"name": layer.name, "weight": list(layer.codes.shape), "input": [int(v) for v in xs.shape[1:]],
                            "stride": layer.stride, "padding": layer.padding, "cg": layer.cg,
                            "groups": int(layer.out_channels * layer.groups), "nnz_groups": layer.nnz_groups})
        for b, x in enumerate(xs):
            tag = f"{prefix}{layer.name}_{b}"
            self.cases.append(layer_case(layer, x, lanes, skip=True, name=f"{tag}_skip"))
            if dense:
                self.cases.append(layer_case(layer, x, lanes, skip=False, name=f"{tag}_dense"))


def sample_images(artifact, count: int, seed: int) -> tuple[np.ndarray, str]:
    """Fashion-MNIST test images when the artifact was trained on them and they are installed,
    else seeded random images of the artifact's input shape."""
    c, h, w = artifact.input_shape
    dataset = (artifact.meta.get("model") or {}).get("dataset") or artifact.meta.get("dataset")
    if (c, h, w) == (1, 28, 28) and dataset in (None, "fashion-mnist") and FMNIST_DIR.is_dir():
        try:
            from ..data.readers import read_fashion_mnist
            images, _ = read_fashion_mnist(FMNIST_DIR, "test")
            return images[:count], f"the first {count} Fashion-MNIST test images"
        except DatasetError:
            pass
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, c, h, w), dtype=np.uint8), f"{count} random images (seed {seed})"


def from_artifact(path, lanes: int, images: int = 1, dense: bool = True, seed: int = 0) -> Workload:
    """Every accelerated layer of an exported artifact, with the int16 inputs the integer
    reference feeds it on ``images`` images; expected outputs come from the same reference."""
    from .. import artifact as artifact_mod
    from ..reference import network

    art = artifact_mod.load(path)
    imgs, what = sample_images(art, images, seed)
    seen: list[tuple[TernaryConv, np.ndarray]] = []

    def record(x, layer):
        seen.append((layer, np.asarray(x).copy()))
        return run_conv(x, layer)

    network.run(art, imgs, conv=record)
    work = Workload(source=f"{Path(path).name} ({len(seen)} accelerated layers, {what})")
    if not seen:
        raise ConfigError(f"{path}: the artifact has no accelerated (tconv) layers; nothing to render")
    for i, (layer, x) in enumerate(seen):
        work.add(layer, x, lanes, dense, prefix=f"l{i:02d}_")
    return work


def parse_layer_spec(spec: str, seed: int = 0) -> list[tuple[TernaryConv, np.ndarray]]:
    """`table7`, `table7:stage2`, a JSON file, or inline JSON (an object or a list of objects)
    -> [(layer, int16 input (C, H, W))]. JSON keys: out_channels, in_channels, in_h, in_w and
    optionally name, kernel (3), stride (1), padding (kernel // 2), cg (16), nnz_groups or
    group_sparsity (0.5), in_group_density (0.5), relu (true), seed."""
    from ..sim.measure import TABLE7, make_layer, random_input, table7_case

    if spec == "table7" or spec.startswith("table7:"):
        names = [t.name for t in TABLE7] if spec == "table7" else [spec.split(":", 1)[1]]
        return [table7_case(name, seed=seed) for name in names]
    text = spec
    if not spec.lstrip().startswith(("{", "[")):
        p = Path(spec)
        if not p.is_file():
            raise ConfigError(f"--layer {spec!r}: not `table7`, `table7:NAME`, inline JSON or an existing JSON file")
        text = p.read_text()
    try:
        items = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"--layer {spec!r}: invalid JSON ({e})") from None
    out = []
    for i, d in enumerate(items if isinstance(items, list) else [items]):
        where = f"--layer {spec!r} item {i}"
        if not isinstance(d, dict) or not all(k in d for k in ("out_channels", "in_channels", "in_h", "in_w")):
            raise ConfigError(f"{where}: needs integer out_channels, in_channels, in_h, in_w")
        try:
            n, c, h, w = (check_int(d[k], k, 1, 1 << 16) for k in ("out_channels", "in_channels", "in_h", "in_w"))
            k = check_int(d.get("kernel", 3), "kernel", 1, 3)
            cg = check_int(d.get("cg", 16), "cg", 1, c)
            nnz = d.get("nnz_groups")
            nnz = None if nnz is None else check_int(nnz, "nnz_groups", 0, n * -(-c // cg))
            gs = None if nnz is not None else check_float(d.get("group_sparsity", 0.5), "group_sparsity", 0.0, 1.0)
            density = check_float(d.get("in_group_density", 0.5), "in_group_density", 0.0, 1.0, lo_open=True)
            stride = check_int(d.get("stride", 1), "stride", 1, 2)
            padding = check_int(d.get("padding", k // 2), "padding", 0, k // 2)
            s = check_int(d.get("seed", seed + i), "seed", 0, 2**31 - 2)
            relu = d.get("relu", True)
            if not isinstance(relu, bool):
                raise ConfigError(f"relu must be true or false, got {relu!r}")
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
        if (h + 2 * padding - k) // stride + 1 < 1 or h + 2 * padding < k or w + 2 * padding < k:
            raise ConfigError(f"{where}: a {k}x{k} kernel with padding {padding} does not fit a {h}x{w} input")
        layer = make_layer(n, c, k, cg, nnz_groups=nnz, group_sparsity=gs, in_group_density=density, stride=stride,
                           padding=padding, relu=relu, seed=s, name=str(d.get("name", f"layer{i}")))
        out.append((layer, random_input(c, h, w, seed=s + 1)))
    return out


def from_specs(specs: list[str], lanes: int, dense: bool = True, seed: int = 0) -> Workload:
    work = Workload(source="layer configurations " + " ".join(specs))
    for spec in specs:
        for layer, x in parse_layer_spec(spec, seed):
            work.add(layer, x[None], lanes, dense)
    return work
