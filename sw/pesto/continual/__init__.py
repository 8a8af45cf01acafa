"""Self-supervised continual learning with progressive task-correlated layer freezing (Chapter 5).

    from pesto.continual import ContinualConfig, run_continual
    result = run_continual(ContinualConfig(learner="barlowtwins", method="ptlf", out="runs/ptlf.pt"))

Parts: ``learners`` (SimSiam, Barlow Twins on zoo backbones), ``augment`` (tensor views of small
images), ``tasks`` (task splits, replay buffer), ``freeze`` (layers and how a frozen one saves
work), ``ptlf`` (eq 5.6-5.9), ``cost`` (saved activations, backward FLOPs), ``evaluate`` (kNN,
linear, eq 5.10-5.11), ``loop`` (the task sequence, checkpoints, DDP), ``plots``, ``cli``
(`pesto continual`). docs/continual.md describes the method as implemented and the benchmark.
"""

from .evaluate import average_accuracy, forgetting
from .learners import LEARNERS, build_learner
from .loop import METHODS, ContinualConfig, load_continual, run_continual
from .tasks import ReplayBuffer, TaskData, check_tasks, parse_tasks

__all__ = ["ContinualConfig", "run_continual", "load_continual", "METHODS", "LEARNERS", "build_learner",
           "ReplayBuffer", "TaskData", "check_tasks", "parse_tasks", "average_accuracy", "forgetting"]
