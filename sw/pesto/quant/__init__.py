"""Weight ternarization (eq 2.1-2.3) as a PyTorch parametrization."""

from .ternary import (
    DELTA_RATIO, Ternarize, ternarize, ternary_threshold, ternarize_model, ternary_layers,
    is_ternary, latent_weight, select_layers, ternary_codes, ternary_param,
)

__all__ = ["DELTA_RATIO", "Ternarize", "ternarize", "ternary_threshold", "ternarize_model",
           "ternary_layers", "is_ternary", "latent_weight", "select_layers", "ternary_codes",
           "ternary_param"]
