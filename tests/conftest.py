"""Fixtures shared by every test folder."""

import pytest


@pytest.fixture
def one_torch_thread():
    """One torch thread per test worker: pytest -n 2 on 2 cores, no oversubscription. The folders
    that train opt in with an autouse fixture that takes this one."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
