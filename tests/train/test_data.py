"""Datasets: real Fashion-MNIST, IDX validation, safe CIFAR-10 pickles, class folders, errors."""

import gzip
import os
import pickle
import struct

import numpy as np
import pytest
import torch

from pesto.data import DATASETS, ImageFolderDataset, load_splits, read_cifar10, read_idx, safe_unpickle, subset
from pesto.errors import ConfigError, DatasetError

FMNIST = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not os.path.isdir(FMNIST), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist_splits_and_normalisation():
    train, test = load_splits("fashion-mnist", augment=False)
    assert (len(train), len(test)) == (60000, 10000)
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert sorted(torch.bincount(test.labels).tolist()) == [1000] * 10
    x = (train.images[:5000].float() / 255 - 0.2860) / 0.3530
    assert abs(float(x.mean())) < 0.05 and abs(float(x.std()) - 1) < 0.05
    img, label = test[0]
    assert img.shape == (1, 28, 28) and int(label) == 9  # the first test image is an ankle boot


def _idx(path, magic_type, dims, data, gz=True):
    raw = bytes([0, 0, magic_type, len(dims)]) + b"".join(struct.pack(">i", d) for d in dims) + data
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def test_idx_parsing_and_validation(tmp_path):
    a = _idx(tmp_path / "a.gz", 0x08, [2, 3], bytes(range(6)))
    assert read_idx(a).tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(DatasetError, match="size mismatch"):
        read_idx(_idx(tmp_path / "b.gz", 0x08, [2, 3], bytes(5)))
    with pytest.raises(DatasetError, match="bad magic"):
        read_idx(_idx(tmp_path / "c", 0x42, [1], bytes(1), gz=False))
    with pytest.raises(DatasetError, match="3 dimensions"):
        read_idx(a, ndim=3)
    (tmp_path / "d.gz").write_bytes(gzip.compress(b"x" * 100)[:20])
    with pytest.raises(DatasetError, match="corrupt gzip"):
        read_idx(tmp_path / "d.gz")


def test_missing_dataset_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.delenv("PESTO_DATA_ROOT", raising=False)
    with pytest.raises(DatasetError) as e:
        load_splits("cifar10", root=tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(e.value) and "cifar-10-python.tar.gz" in str(e.value)
    import dataclasses
    from pesto.data import datasets
    info = dataclasses.replace(DATASETS["fashion-mnist"], system_dirs=(str(tmp_path / "sys"),))
    monkeypatch.setitem(datasets.DATASETS, "fashion-mnist", info)
    with pytest.raises(DatasetError, match=r"looked in: .*sys.*apt-get install dataset-fashion-mnist"):
        load_splits("fashion-mnist")
    with pytest.raises(ConfigError, match="unknown dataset"):
        load_splits("mnist-3d")


def _cifar_folder(tmp_path, n=4):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": list(rng.integers(0, 10, n)), b"batch_label": name.encode()}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return folder


def test_cifar10_batches_parse_without_arbitrary_unpickling(tmp_path):
    folder = _cifar_folder(tmp_path)
    x, y = read_cifar10(folder, "train")
    assert x.shape == (20, 3, 32, 32) and x.dtype == np.uint8 and y.shape == (20,)
    train, test = load_splits("cifar10", root=tmp_path)
    assert (len(train), len(test)) == (20, 4) and train[0][0].shape == (3, 32, 32)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with pytest.raises(pickle.UnpicklingError, match="only numpy arrays"):
        safe_unpickle(pickle.dumps({"data": Evil()}))
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(DatasetError, match="not a CIFAR-10 batch file"):
        read_cifar10(folder, "test")


def test_image_folders_png_and_npy(tmp_path):
    from PIL import Image
    info = DATASETS["imagenet"]
    for k, cls in enumerate(["cat", "dog"]):
        (tmp_path / cls).mkdir()
        Image.fromarray(np.full((40, 50, 3), 60 * k, np.uint8)).save(tmp_path / cls / "a.png")
        np.save(tmp_path / cls / "b.npy", np.full((30, 30, 3), 200, np.uint8))
    ds = ImageFolderDataset(tmp_path, info, size=24, augment=False)
    assert ds.classes == ["cat", "dog"] and len(ds) == 4
    x, y = ds[2]
    assert x.shape == (3, 24, 24) and y == 1
    assert torch.allclose(x[0], torch.full((24, 24), (60 / 255 - 0.485) / 0.229), atol=1e-5)
    aug = ImageFolderDataset(tmp_path, info, size=16, augment=True)
    assert aug[0][0].shape == (3, 16, 16)
    with pytest.raises(DatasetError, match="no class folders"):
        ImageFolderDataset(tmp_path / "cat", info, 16)


def test_augmentation_and_subset(tmp_path):
    folder = _cifar_folder(tmp_path, n=10)
    train, _ = load_splits("cifar10", root=folder, augment=True)
    x, _ = train[0]
    assert x.shape == (3, 32, 32)
    s = subset(train, 7, seed=3)
    assert len(s) == 7 and list(s.indices) == list(subset(train, 7, seed=3).indices)
    assert subset(train, None) is train


def test_readers_import_without_torch(tmp_path):
    """The board has numpy but no torch: pesto.data.readers must still import and read IDX."""
    import subprocess
    import sys
    a = _idx(tmp_path / "a.gz", 0x08, [2, 2], bytes(range(4)))
    code = ("import sys; sys.modules['torch'] = None\n"
            "from pesto.data.readers import read_idx\n"
            f"print(read_idx({str(a)!r}).sum())")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "6"


def test_class_filter_relabels_in_the_order_given():
    from pesto.data import DATASETS, parse_classes, select_classes
    from pesto.data.datasets import ImageDataset
    images = np.arange(10 * 4, dtype=np.uint8).reshape(10, 1, 2, 2)
    labels = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) % 7
    ds = ImageDataset(images, labels, DATASETS["fashion-mnist"])
    sub = select_classes(ds, [5, 1])
    assert sub.labels.tolist() == [1, 0, 1] and sub.images[:, 0, 0, 0].tolist() == [4, 20, 32]
    assert select_classes(ds, None) is ds
    assert parse_classes("0-4") == [0, 1, 2, 3, 4] and parse_classes("5, 7,9") == [5, 7, 9]
    assert parse_classes("0-2,6") == [0, 1, 2, 6]
    for bad in ([7], [1, 1], [-1]):
        with pytest.raises(ConfigError, match="distinct labels in 0..6"):
            select_classes(ds, bad)
    with pytest.raises(ConfigError, match="expected labels like 0-4"):
        parse_classes("shoes")


@pytest.mark.skipif(not os.path.isdir(FMNIST), reason="dataset-fashion-mnist not installed")
def test_training_on_some_classes(tmp_path):
    from pesto.train.loop import TrainConfig, train
    from pesto.train.checkpoint import load_checkpoint
    ckpt = train(TrainConfig(mode="wpc", epochs=1, steps_per_epoch=2, batch_size=16, subset=64, test_subset=64,
                             classes=[0, 1, 2, 3, 4], out=str(tmp_path / "c.pt"), progress=False, augment=False))
    assert ckpt["model"]["num_classes"] == 5 and ckpt["data"]["classes"] == [0, 1, 2, 3, 4]
    assert load_checkpoint(tmp_path / "c.pt")["state_dict"]["fc.weight"].shape[0] == 5
    with pytest.raises(Exception, match="other settings.*classes"):
        train(TrainConfig(mode="wpc", epochs=2, steps_per_epoch=2, batch_size=16, subset=64, test_subset=64,
                          classes=[5, 6, 7, 8, 9], out=str(tmp_path / "c.pt"), progress=False, augment=False,
                          resume=True))
