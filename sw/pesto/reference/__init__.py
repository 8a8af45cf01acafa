"""The bit-exact integer reference (numpy): the golden model for RTL, HLS and driver."""

from .layer import conv_accumulate, run_conv
from .network import predict, run, select

__all__ = ["conv_accumulate", "run_conv", "run", "predict", "select"]
