"""The project's own error types: one base class, one subclass per kind of bad input.

Every message names the problem and the fix. Catch ``PestoError`` to handle them all.
"""


class PestoError(Exception):
    """Base class of every error pesto raises on purpose."""


class ConfigError(PestoError, ValueError):
    """An option or shape that cannot work (a Cg that does not fit, an unknown mode)."""


class UsageError(ConfigError):
    """A command line that cannot work, found before any work starts (a value out of range, a
    missing input path, options that contradict each other). The `pesto` CLI exits 2 on it."""


class UnsupportedLayerError(PestoError):
    """A layer type the exporter or the accelerator does not handle."""


class CheckpointError(PestoError):
    """A checkpoint that is corrupt, truncated, or of another architecture."""


class ArtifactError(PestoError):
    """An export artifact that is corrupt, truncated, or of an unknown format version."""


class DatasetError(PestoError):
    """A dataset that is missing or malformed."""


class HardwareError(PestoError):
    """The accelerator (board or simulation) misbehaved: timeout, error flag, wrong bitstream."""


class ExportError(PestoError):
    """An export that ran but whose result fails its own check (the integer pipeline disagrees
    with the float model below the threshold); nothing is written."""


class OutputError(PestoError):
    """A file pesto must write cannot be written: disk full, read-only folder, a folder in the
    way, or another pesto process writing the same path."""
