"""The project's own error types: one base class, one subclass per kind of bad input.

Every message names the problem and the fix. Catch ``PestoError`` to handle them all.
"""


class PestoError(Exception):
    """Base class of every error pesto raises on purpose."""


class ConfigError(PestoError, ValueError):
    """An option or shape that cannot work (a Cg that does not fit, an unknown mode)."""


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
