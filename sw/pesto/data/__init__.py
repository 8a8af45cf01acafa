"""Datasets: Fashion-MNIST (default), CIFAR-10, ImageNet-style class folders, scikit-learn's digits.

    train, test = load_splits("fashion-mnist")          # ImageDataset, ImageDataset
    info = DATASETS["fashion-mnist"]                     # channels, size, classes, mean, std
    train = select_classes(train, [0, 1, 2, 3, 4])      # those labels only, relabelled 0..4

Images stay uint8 in memory; ``ImageDataset`` augments (random crop + flip) and normalises
per channel, x = (pixel / 255 - mean) / std, the same normalisation the checkpoint records for
deployment. Nothing is downloaded: a missing dataset raises DatasetError saying where pesto
looked and how to install it.
"""

from .readers import read_idx, read_fashion_mnist, read_cifar10, safe_unpickle

# the torch-based datasets load on first use: the readers stay importable on a torch-free board
_LAZY = ("DATASETS", "DatasetInfo", "ImageDataset", "ImageFolderDataset", "load_splits",
         "dataset_info", "subset", "normalize", "select_classes", "parse_classes")


def __getattr__(name):
    if name in _LAZY:
        from . import datasets
        return getattr(datasets, name)
    raise AttributeError(f"module 'pesto.data' has no attribute {name!r}")


__all__ = [*_LAZY, "read_idx", "read_fashion_mnist", "read_cifar10", "safe_unpickle"]
