import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """One torch thread per test (tests/conftest.py)."""
