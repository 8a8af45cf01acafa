"""Maps the repository's top-level hw/ hls/ sim/ bitstreams/ notebooks/ into the package as
pesto.resources.<folder>, so the sdist and the wheel carry them; the folders stay where they
are in the repository (pesto.resources finds them in either place). The rest: pyproject.toml."""

from setuptools import find_namespace_packages, setup

FOLDERS = ("hw", "hls", "sim", "bitstreams", "notebooks")   # == pesto.resources.FOLDERS
SCRATCH = ["*__pycache__*", "*sim_build*"]                  # never shipped (see .gitignore)

resources = [f"pesto.resources.{d}{'.' + sub if sub else ''}"
             for d in FOLDERS for sub in ["", *find_namespace_packages(d, exclude=SCRATCH)]]
setup(
    packages=find_namespace_packages("sw", include=["pesto", "pesto.*"], exclude=SCRATCH) + resources,
    package_dir={"": "sw", **{f"pesto.resources.{d}": d for d in FOLDERS}},
    package_data={"pesto.hwspec": ["*.json"], "pesto.assets": ["*"], "pesto.sim": ["*.cpp"], **{name: ["*"] for name in resources}},
    exclude_package_data={"": ["*.pyc", "results.xml", "*.vcd", "*.fst"]},
)
