"""PE-group geometry by hand (the brief's group geometry)."""

import numpy as np
import pytest
import torch

from pesto import geometry
from pesto.errors import ConfigError


def test_padding_and_group_view():
    w = np.arange(2 * 5 * 1 * 1, dtype=np.float64).reshape(2, 5, 1, 1) + 1
    g = geometry.group_view(w, 4)  # C=5 -> padded to 8, G=2
    assert g.shape == (2, 2, 4)
    assert g[0, 1].tolist() == [5, 0, 0, 0]
    assert geometry.num_groups(5, 4) == 2 and geometry.padded_channels(5, 4) == 8


def test_group_norms_numpy_and_torch_agree_by_hand():
    w = np.zeros((1, 3, 3, 3))
    w[0, 0, 0, 0] = 3.0
    w[0, 1, 2, 2] = 4.0   # group 0 (channels 0,1): norm 5
    w[0, 2, 1, 1] = -2.0  # group 1 (channel 2 + padding): norm 2
    assert geometry.group_norms(w, 2).tolist() == [[5.0, 2.0]]
    t = geometry.group_norms(torch.tensor(w, requires_grad=True), 2)
    assert t.detach().numpy().tolist() == [[5.0, 2.0]]
    t.sum().backward()  # differentiable through the padding


def test_indexer_and_linear_weights():
    w = np.zeros((3, 8))
    w[1, 5] = 1
    idx = geometry.group_indexer(w, 4)
    assert idx.tolist() == [[False, False], [False, True], [False, False]]


def test_bad_cg():
    with pytest.raises(ConfigError, match="larger than"):
        geometry.check_cg(32, 16)
    with pytest.raises(ConfigError):
        geometry.check_cg(0)
    with pytest.raises(ConfigError):
        geometry.as_4d(np.zeros((2, 2, 2)))
