"""Every non-trivial read of activation, re-exported from the package's modules."""
from activation.selectors.activations import activation_count

__all__ = ["activation_count"]
