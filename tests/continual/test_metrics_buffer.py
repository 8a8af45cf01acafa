"""Eq 5.10 / 5.11 on a known accuracy matrix, the kNN rule, the buffer's uniform filling, task splits."""

import pytest
import torch

from pesto.continual import ReplayBuffer, average_accuracy, check_tasks, forgetting, parse_tasks
from pesto.continual.evaluate import knn_predict
from pesto.continual.tasks import default_tasks
from pesto.errors import ConfigError


def test_accuracy_and_forgetting_of_a_known_matrix():
    A = [[90.0, 50.0, 40.0],
         [95.0, 85.0, 45.0],     # task 1 improved after task 2: forgetting counts from its best (95)
         [70.0, 80.0, 88.0]]
    assert average_accuracy(A) == pytest.approx((70 + 80 + 88) / 3)
    assert forgetting(A) == pytest.approx(((95 - 70) + (85 - 80)) / 2)
    assert forgetting([[80.0, 10.0], [85.0, 90.0]]) == 0.0        # no task lost accuracy
    assert forgetting([[70.0]]) is None
    with pytest.raises(ConfigError, match="T x T"):
        average_accuracy([[1.0, 2.0]])


def test_weighted_knn_votes_among_the_bank_classes():
    bank = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]]), dim=1)
    labels = torch.tensor([4, 4, 7, 7])
    q = torch.nn.functional.normalize(torch.tensor([[1.0, 0.2], [0.2, 1.0]]), dim=1)
    assert knn_predict(q, bank, labels, k=3).tolist() == [4, 7]
    assert knn_predict(q, bank, labels, k=200).tolist() == [4, 7]   # k is capped at the bank size


def test_buffer_fills_uniformly_per_task():
    tasks = [torch.arange(100 * t, 100 * t + 100) for t in range(4)]
    buf = ReplayBuffer(10)
    history = []
    for t, idx in enumerate(tasks):
        buf.add_task(t, idx, seed=3)
        history.append([v.clone() for v in buf.per_task])
    assert [len(v) for v in history[0]] == [10]
    assert [len(v) for v in history[1]] == [5, 5]
    assert [len(v) for v in history[2]] == [4, 3, 3]                 # the remainder goes to the earliest
    assert [len(v) for v in history[3]] == [3, 3, 2, 2]
    assert len(buf) == 10 and len(set(buf.indices().tolist())) == 10
    for t, v in enumerate(buf.per_task):
        assert ((v >= 100 * t) & (v < 100 * t + 100)).all()            # each share comes from its own task
    for before, after in zip(history, history[1:]):                    # an old share only shrinks
        for old, new in zip(before, after):
            assert set(new.tolist()) <= set(old.tolist())
    again = ReplayBuffer(10)
    for t, idx in enumerate(tasks):
        again.add_task(t, idx, seed=3)
    assert torch.equal(again.indices(), buf.indices())                # deterministic in the seed
    # the new task's share is a uniform draw: over many seeds every image is picked about equally
    counts = torch.zeros(100)
    for seed in range(400):
        b = ReplayBuffer(10)
        b.add_task(0, tasks[0], seed)
        counts[b.indices()] += 1
    assert counts.min() > 15 and counts.max() < 70                   # expected 40 each
    g = torch.Generator().manual_seed(0)
    assert len(set(buf.sample(10, g).tolist())) == 10                  # no repeats when it holds enough
    assert len(buf.sample(25, g)) == 25
    with pytest.raises(ConfigError, match="in order"):
        buf.add_task(7, tasks[0], 0)


def test_task_splits_must_partition_the_classes():
    assert parse_tasks("0,1/2,3") == [[0, 1], [2, 3]]
    assert default_tasks(10, 5) == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    check_tasks(default_tasks(10, 5), 10)
    with pytest.raises(ConfigError, match="class 1 appears in tasks 1 and 2"):
        check_tasks([[0, 1], [1, 2, 3, 4, 5, 6, 7, 8, 9]], 10)
    with pytest.raises(ConfigError, match=r"classes \[8, 9\] are in no task"):
        check_tasks([[0, 1], [2, 3], [4, 5], [6, 7]], 10)
    with pytest.raises(ConfigError, match="class 12 does not exist"):
        check_tasks([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9, 12]], 10)
    with pytest.raises(ConfigError, match="task 2 of the split has no classes"):
        check_tasks(parse_tasks("0,1,2,3,4,5,6,7,8,9/"), 10)
    with pytest.raises(ConfigError, match="integers"):
        parse_tasks("0,a/1")
    with pytest.raises(ConfigError, match="do not split into 3 equal tasks"):
        default_tasks(10, 3)
