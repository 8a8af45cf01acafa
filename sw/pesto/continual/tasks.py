"""The continual setting of section 5.2.1: a split of a dataset's classes into tasks, the per-task
image sets, and the replay buffer filled uniformly per task.

    split = parse_tasks("0,1/2,3/4,5/6,7/8,9")          # Split Fashion-MNIST, 5 tasks of 2 classes
    data = TaskData.load("fashion-mnist", split)        # uint8 images, per-task index lists
    buf = ReplayBuffer(256); buf.add_task(0, data.train_idx[0], seed=0)

A split must be a partition of the dataset's classes: every class in exactly one task. The buffer
holds dataset indices (the images stay in ``TaskData``) and, after task t, ``size // (t + 1)``
samples of each task seen so far (the remainder goes to the earliest tasks): when a task arrives,
each older task keeps a random subset of what it had and the new task fills the freed slots with a
uniform random sample of its own images, all drawn from a generator seeded by (seed, task).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError, DatasetError


def parse_tasks(text: str) -> list[list[int]]:
    """'0,1/2,3' -> [[0, 1], [2, 3]]: tasks separated by '/', classes by ','."""
    tasks = []
    for part in str(text).split("/"):
        try:
            tasks.append([int(c) for c in part.split(",") if c.strip()])
        except ValueError:
            raise ConfigError(f"task split {text!r}: classes must be integers, tasks separated by '/' and "
                              f"classes by ',' (e.g. 0,1/2,3/4,5/6,7/8,9)") from None
    return tasks


def default_tasks(num_classes: int, n_tasks: int) -> list[list[int]]:
    """Consecutive classes, num_classes / n_tasks per task (the Split CIFAR-10 convention)."""
    if n_tasks < 1 or num_classes % n_tasks:
        raise ConfigError(f"{num_classes} classes do not split into {n_tasks} equal tasks; "
                          f"choose a divisor of {num_classes} or give the split with --tasks")
    k = num_classes // n_tasks
    return [list(range(i * k, (i + 1) * k)) for i in range(n_tasks)]


def check_tasks(tasks: list[list[int]], num_classes: int) -> None:
    """A split must be a partition of range(num_classes) into non-empty tasks."""
    if not tasks:
        raise ConfigError("the task split is empty; give at least one task, e.g. --tasks 0,1/2,3/4,5/6,7/8,9")
    seen: dict[int, int] = {}
    for t, classes in enumerate(tasks):
        if not classes:
            raise ConfigError(f"task {t + 1} of the split has no classes; every task needs at least one")
        for c in classes:
            if not 0 <= c < num_classes:
                raise ConfigError(f"task {t + 1}: class {c} does not exist (the dataset has classes "
                                  f"0..{num_classes - 1})")
            if c in seen:
                where = f"tasks {seen[c] + 1} and {t + 1}" if seen[c] != t else f"task {t + 1} twice"
                raise ConfigError(f"class {c} appears in {where}: tasks must not overlap; "
                                  f"give each class to exactly one task")
            seen[c] = t
    missing = sorted(set(range(num_classes)) - set(seen))
    if missing:
        raise ConfigError(f"classes {missing} are in no task: the split must cover all {num_classes} "
                          f"classes (e.g. --tasks 0,1/2,3/4,5/6,7/8,9)")


def _pick(idx: torch.Tensor, n: int | None, g: torch.Generator) -> torch.Tensor:
    """A uniform random subset of n entries of idx (all of them for None or n >= len), sorted."""
    if n is None or n >= len(idx):
        return idx
    return idx[torch.randperm(len(idx), generator=g)[:n]].sort().values


@dataclass
class TaskData:
    """A dataset's images in memory (uint8, N x C x H x W) with the index sets of each task.

    train_idx[t]: the task's training images (optionally a fixed random subset per task);
    bank_idx[t]: the kNN memory bank / linear-probe training set (a subset of train_idx[t]);
    test_idx[t]: the task's test images.
    """

    name: str
    tasks: list[list[int]]
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    train_idx: list[torch.Tensor]
    bank_idx: list[torch.Tensor]
    test_idx: list[torch.Tensor]

    @classmethod
    def load(cls, name: str, tasks: list[list[int]], root=None, train_per_task: int | None = None,
             bank_per_task: int | None = None, test_per_task: int | None = None, seed: int = 0) -> "TaskData":
        from ..data import dataset_info, load_splits
        info = dataset_info(name)
        check_tasks(tasks, info.num_classes)
        train, test = load_splits(name, root, augment=False)
        if not hasattr(train, "images"):
            raise ConfigError(f"continual learning keeps the images in memory; {name} is read lazily from "
                              f"folders -- use fashion-mnist or cifar10")
        return cls.from_arrays(name, tasks, train.images, train.labels, test.images, test.labels,
                               train_per_task, bank_per_task, test_per_task, seed)

    @classmethod
    def from_arrays(cls, name, tasks, train_images, train_labels, test_images, test_labels,
                    train_per_task=None, bank_per_task=None, test_per_task=None, seed: int = 0) -> "TaskData":
        g = torch.Generator().manual_seed(int(seed) + 7919)
        train_idx, bank_idx, test_idx = [], [], []
        for t, classes in enumerate(tasks):
            cl = torch.as_tensor(classes)
            tr = torch.nonzero(torch.isin(train_labels, cl)).flatten()
            te = torch.nonzero(torch.isin(test_labels, cl)).flatten()
            if len(tr) == 0 or len(te) == 0:
                raise DatasetError(f"{name}: task {t + 1} (classes {classes}) has no "
                                   f"{'training' if len(tr) == 0 else 'test'} images")
            tr = _pick(tr, train_per_task, g)
            train_idx.append(tr)
            bank_idx.append(_pick(tr, bank_per_task, g))
            test_idx.append(_pick(te, test_per_task, g))
        return cls(name, [list(c) for c in tasks], train_images, train_labels, test_images, test_labels,
                   train_idx, bank_idx, test_idx)


class ReplayBuffer:
    """A fixed number of stored samples, split evenly over the tasks seen so far (section 5.2.2.1)."""

    def __init__(self, size: int):
        if size < 1:
            raise ConfigError(f"buffer size must be positive, got {size}")
        self.size = int(size)
        self.per_task: list[torch.Tensor] = []    # dataset indices of each seen task's samples

    def __len__(self) -> int:
        return sum(len(v) for v in self.per_task)

    def quotas(self, n_tasks: int) -> list[int]:
        base, extra = divmod(self.size, n_tasks)
        return [base + (1 if t < extra else 0) for t in range(n_tasks)]

    def add_task(self, task: int, indices: torch.Tensor, seed: int) -> None:
        """Store task ``task``'s share; older tasks give up slots uniformly at random."""
        if task != len(self.per_task):
            raise ConfigError(f"replay buffer: tasks must arrive in order (expected task {len(self.per_task)}, "
                              f"got {task})")
        g = torch.Generator().manual_seed(int(seed) * 1_000_003 + task)
        quota = self.quotas(task + 1)
        self.per_task = [_pick(old, quota[t], g) for t, old in enumerate(self.per_task)]
        self.per_task.append(_pick(torch.as_tensor(indices), quota[task], g))

    def indices(self) -> torch.Tensor:
        return torch.cat(self.per_task) if self.per_task else torch.zeros(0, dtype=torch.long)

    def sample(self, n: int, g: torch.Generator) -> torch.Tensor:
        """n stored indices drawn uniformly (without replacement when the buffer holds enough)."""
        idx = self.indices()
        if len(idx) >= n:
            return idx[torch.randperm(len(idx), generator=g)[:n]]
        return idx[torch.randint(len(idx), (n,), generator=g)]

    def nbytes(self, images: torch.Tensor) -> int:
        """Bytes the stored samples occupy (the images at the dataset's uint8 precision)."""
        return len(self) * images[0].numel() * images.element_size()

    def state_dict(self) -> dict:
        return {"size": self.size, "per_task": [v.clone() for v in self.per_task]}

    def load_state_dict(self, state: dict) -> None:
        self.size = int(state["size"])
        self.per_task = [torch.as_tensor(v, dtype=torch.long) for v in state["per_task"]]
