import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread per test worker: pytest -n 2 on 2 cores, no oversubscription."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
