"""RTL tests need a simulator; skip cleanly (with the fix) where one is missing."""

import shutil

import pytest


def pytest_collection_modifyitems(config, items):
    missing = [tool for tool in ("iverilog", "verilator") if shutil.which(tool) is None]
    if not missing:
        return
    skip = pytest.mark.skip(reason=f"{', '.join(missing)} not on PATH: run scripts/setup.sh and "
                                   f"activate .venv")
    for item in items:
        if "tests/rtl/" in str(item.fspath) and any(m in item.name for m in missing):
            item.add_marker(skip)
