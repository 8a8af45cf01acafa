"""Dataset registry, in-memory image datasets with augmentation, and class-folder datasets."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..errors import ConfigError, DatasetError
from .readers import read_cifar10, read_fashion_mnist

ENV_ROOT = "PESTO_DATA_ROOT"  # a folder holding fashion-mnist/, cifar-10-batches-py/, imagenet/


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    in_channels: int
    input_size: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_pad: int          # random-crop padding of the standard augmentation (0: none)
    flip: bool             # random horizontal flip
    folder: str            # the folder name below a data root
    system_dirs: tuple[str, ...]
    how_to_get: str


DATASETS = {
    "fashion-mnist": DatasetInfo(
        "fashion-mnist", 1, 28, 10, (0.2860,), (0.3530,), 2, True, "fashion-mnist",
        ("/usr/share/datasets/fashion-mnist",),
        "install the Debian package: sudo apt-get install dataset-fashion-mnist "
        "(or put the four *-ubyte.gz files of github.com/zalandoresearch/fashion-mnist in a folder "
        "and pass --data-root FOLDER)"),
    "cifar10": DatasetInfo(
        "cifar10", 3, 32, 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), 4, True,
        "cifar-10-batches-py", (),
        "download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html on a "
        "machine with internet, unpack it, and pass --data-root .../cifar-10-batches-py"),
    "imagenet": DatasetInfo(
        "imagenet", 3, 224, 1000, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 0, True,
        "imagenet", (),
        "pass --data-root FOLDER with train/<class>/*.JPEG and val/<class>/*.JPEG (or *.npy HxWxC "
        "uint8 arrays), the layout torchvision's ImageFolder reads"),
    # scikit-learn's bundled 8x8 handwritten digits (1,797 images, 0..16 scaled to 0..255); resized
    # to the model's input by load_splits(input_size=...); fixed split: DIGITS_TEST_SIZE images test
    "digits": DatasetInfo(
        "digits", 1, 8, 10, (0.3053,), (0.3760,), 0, False, "", (),
        "pip install 'pesto[digits]' (scikit-learn; the digits ship inside it: sklearn.datasets.load_digits)"),
}
DIGITS_TEST_SIZE = 450   # the first 450 of a seed-0 permutation of the 1,797 images are the test split


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    return DATASETS[name]


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """(x - mean) / std per channel for x in [0, 1] of shape (..., C, H, W)."""
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    return (x - m) / s


class ImageDataset(Dataset):
    """uint8 images (N, C, H, W) + int64 labels in memory; augment = random crop + flip.

    Augmentation draws from torch's RNG, which DataLoader seeds per worker (numpy's is not)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, info: DatasetInfo, augment: bool = False):
        self.images = torch.from_numpy(np.ascontiguousarray(images))
        self.labels = torch.from_numpy(np.ascontiguousarray(labels)).long()
        self.info = info
        self.augment = augment

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        x = self.images[i].float().div_(255.0)
        if self.augment:
            p = self.info.crop_pad
            if p:
                h, w = x.shape[-2:]
                x = F.pad(x, (p, p, p, p))
                dy, dx = torch.randint(0, 2 * p + 1, (2,)).tolist()
                x = x[:, dy:dy + h, dx:dx + w]
            if self.info.flip and torch.rand(()) < 0.5:
                x = x.flip(-1)
        return normalize(x, self.info.mean, self.info.std), self.labels[i]


IMAGE_EXTS = (".jpeg", ".jpg", ".png", ".bmp", ".ppm", ".webp", ".npy")


class ImageFolderDataset(Dataset):
    """root/<class>/<image>: decoded lazily (PIL for image files, numpy for .npy HxWxC uint8).

    Train: random-resized crop (scale 0.08-1, aspect 3/4-4/3) + flip. Eval: resize the short side
    to size*256/224, centre crop ``size`` (the ResNet preprocessing).
    """

    def __init__(self, root: str | os.PathLike, info: DatasetInfo, size: int, augment: bool = False):
        self.root = Path(root)
        classes = sorted(d.name for d in self.root.iterdir() if d.is_dir())
        if not classes:
            raise DatasetError(f"{self.root}: no class folders found; {info.how_to_get}")
        self.classes = classes
        self.samples = [(p, k) for k, c in enumerate(classes) for p in sorted((self.root / c).iterdir())
                        if p.suffix.lower() in IMAGE_EXTS]
        if not self.samples:
            raise DatasetError(f"{self.root}: the class folders hold no images ({', '.join(IMAGE_EXTS)})")
        self.labels = torch.tensor([k for _, k in self.samples])
        self.info, self.size, self.augment = info, size, augment

    def __len__(self) -> int:
        return len(self.samples)

    def _read(self, path: Path) -> torch.Tensor:
        if path.suffix.lower() == ".npy":
            a = np.load(path, allow_pickle=False)
        else:
            try:
                from PIL import Image
            except ImportError as e:
                raise DatasetError(f"{path}: reading image files needs Pillow (pip install pillow); "
                                   f"or store the images as .npy HxWxC uint8 arrays") from e
            with Image.open(path) as im:
                a = np.asarray(im.convert("RGB" if self.info.in_channels == 3 else "L"))
        if a.ndim == 2:
            a = a[:, :, None]
        if a.dtype != np.uint8 or a.ndim != 3:
            raise DatasetError(f"{path}: expected an HxWxC uint8 image, got {a.dtype} {a.shape}")
        return torch.from_numpy(np.array(a, copy=True)).permute(2, 0, 1).float().div_(255.0)

    def __getitem__(self, i: int):
        path, label = self.samples[i]
        x = self._read(path)
        c, h, w = x.shape
        if self.augment:
            u = torch.rand(2).tolist()
            area = h * w * (0.08 + 0.92 * u[0])
            ratio = np.exp(np.log(3 / 4) + u[1] * np.log(16 / 9))
            ch = int(min(h, max(1, round(np.sqrt(area / ratio)))))
            cw = int(min(w, max(1, round(np.sqrt(area * ratio)))))
            y0, x0 = int(torch.randint(0, h - ch + 1, ())), int(torch.randint(0, w - cw + 1, ()))
            x = F.interpolate(x[None, :, y0:y0 + ch, x0:x0 + cw], size=(self.size, self.size),
                              mode="bilinear", align_corners=False)[0]
            if torch.rand(()) < 0.5:
                x = x.flip(-1)
        else:
            short = round(self.size * 256 / 224)
            scale = short / min(h, w)
            x = F.interpolate(x[None], size=(max(short, round(h * scale)), max(short, round(w * scale))),
                              mode="bilinear", align_corners=False)[0]
            y0, x0 = (x.shape[1] - self.size) // 2, (x.shape[2] - self.size) // 2
            x = x[:, y0:y0 + self.size, x0:x0 + self.size]
        return normalize(x, self.info.mean, self.info.std), label


def _candidates(info: DatasetInfo, root: str | os.PathLike | None) -> list[Path]:
    """Where to look: a given root (and its <folder>/) only -- never elsewhere, so a wrong root is
    an error, not a silent switch to another copy; else $PESTO_DATA_ROOT/<folder> only; else the
    system folders."""
    if root is not None:
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"data root {root} {'is not a folder' if root.exists() else 'does not exist'}; "
                               f"pesto looks for {info.name} only there. {info.how_to_get}")
        if not any(root.iterdir()):
            raise DatasetError(f"data root {root} is empty; pesto looks for {info.name} only there. {info.how_to_get}")
        return [root, root / info.folder]
    if os.environ.get(ENV_ROOT):
        return [Path(os.environ[ENV_ROOT]) / info.folder]
    return [Path(d) for d in info.system_dirs]


def _missing(info: DatasetInfo, looked: list[Path]) -> DatasetError:
    where = ", ".join(str(p) for p in looked) or "(nowhere: no --data-root given)"
    return DatasetError(f"{info.name} not found; looked in: {where}. To get it: {info.how_to_get}. "
                        f"You can also set {ENV_ROOT} to a folder holding {info.folder}/")


def load_splits(name: str = "fashion-mnist", root: str | os.PathLike | None = None, augment: bool = True,
                input_size: int | None = None) -> tuple[Dataset, Dataset]:
    """(train, test) datasets of ``name``; the train split augments when ``augment``.

    input_size: the image size of ``imagenet`` (crops) and ``digits`` (resized from 8x8)."""
    info = dataset_info(name)
    looked = _candidates(info, root)
    if name == "imagenet":
        for base in looked:
            if (base / "train").is_dir() and (base / "val").is_dir():
                size = input_size or info.input_size
                return (ImageFolderDataset(base / "train", info, size, augment),
                        ImageFolderDataset(base / "val", info, size, False))
        raise _missing(info, looked)
    if name == "digits":
        return _digits_splits(info, augment, input_size or info.input_size)
    reader = read_fashion_mnist if name == "fashion-mnist" else read_cifar10
    probe = "train-images-idx3-ubyte" if name == "fashion-mnist" else "data_batch_1"
    for base in looked:
        if (base / probe).is_file() or (base / (probe + ".gz")).is_file():
            xtr, ytr = reader(base, "train")
            xte, yte = reader(base, "test")
            return ImageDataset(xtr, ytr, info, augment), ImageDataset(xte, yte, info, False)
    raise _missing(info, looked)


def resize_images(images, size: int) -> np.ndarray:
    """uint8 (N, C, H, W) -> uint8 (N, C, size, size), bilinear (torch's, align_corners=False)."""
    x = torch.as_tensor(np.asarray(images)).float()
    if tuple(x.shape[-2:]) == (size, size):
        return np.ascontiguousarray(np.asarray(images, dtype=np.uint8))
    y = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return y.round().clamp(0, 255).to(torch.uint8).numpy()


def _digits_splits(info: DatasetInfo, augment: bool, size: int):
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise DatasetError(f"the digits dataset needs scikit-learn: {info.how_to_get}") from e
    d = load_digits()
    raw = np.round(d.images.astype(np.float64) * (255 / 16)).astype(np.uint8)[:, None]
    images = resize_images(raw, size)
    perm = np.random.default_rng(0).permutation(len(images))
    test, train = np.sort(perm[:DIGITS_TEST_SIZE]), np.sort(perm[DIGITS_TEST_SIZE:])
    labels = d.target.astype(np.int64)
    return (ImageDataset(images[train], labels[train], info, augment),
            ImageDataset(images[test], labels[test], info, False))


def parse_classes(text: str) -> list[int]:
    """``"0-4"`` or ``"5,7,9"`` (or a mix, ``"0-2,7"``) -> [0, 1, 2, 3, 4] / [5, 7, 9]."""
    out: list[int] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            lo, sep, hi = part.partition("-")
            out += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
    except ValueError:
        raise ConfigError(f"classes {text!r}: expected labels like 0-4 or 5,6,7") from None
    if not out:
        raise ConfigError(f"classes {text!r}: no class given; write e.g. 0-4 or 5,6,7")
    return out


def select_classes(ds: Dataset, classes) -> Dataset:
    """The samples of ``classes`` only, relabelled 0..k-1 in the order given ([5, 9] -> 5 is 0, 9 is 1).

    Works on ImageDataset and ImageFolderDataset (what load_splits returns); classes None: ds itself.
    """
    if classes is None:
        return ds
    classes = [int(c) for c in classes]
    labels = ds.labels
    n = int(labels.max()) + 1 if len(labels) else 0
    if not classes or len(set(classes)) != len(classes) or min(classes) < 0 or max(classes) >= n:
        raise ConfigError(f"classes {classes}: need distinct labels in 0..{n - 1} (the dataset has {n} classes)")
    remap = torch.full((n,), -1, dtype=torch.long)
    remap[torch.tensor(classes)] = torch.arange(len(classes))
    new = remap[labels.long()]
    keep = (new >= 0).nonzero().flatten()
    if isinstance(ds, ImageDataset):
        out = ImageDataset(ds.images[keep].numpy(), new[keep].numpy(), ds.info, ds.augment)
    elif isinstance(ds, ImageFolderDataset):
        out = copy.copy(ds)
        out.samples = [(ds.samples[i][0], int(new[i])) for i in keep.tolist()]
        out.labels = new[keep]
        out.classes = [ds.classes[c] for c in classes]
    else:
        raise ConfigError(f"select_classes: cannot filter a {type(ds).__name__}; filter before subset()")
    return out


def subset(ds: Dataset, n: int | None, seed: int = 0) -> Dataset:
    """A fixed random subset of n samples drawn with ``seed`` (n=None or n >= len: all)."""
    if n is None or n >= len(ds):
        return ds
    if n < 1:
        raise ConfigError(f"subset size must be positive, got {n}")
    g = np.random.default_rng(seed)
    idx = np.sort(g.permutation(len(ds))[:n])
    return torch.utils.data.Subset(ds, idx.tolist())
