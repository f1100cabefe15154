"""Every non-trivial read of activation, re-exported from the package's modules."""
from activation.selectors.activations import (
    activation_count,
    activations_with_status,
    dead_letters,
    delivery_list,
    destinations_with_usage,
    failed_deliveries_count,
    profile_delivery_log,
    sync_list,
)

__all__ = ["activation_count", "activations_with_status", "dead_letters", "delivery_list",
           "destinations_with_usage", "failed_deliveries_count", "profile_delivery_log", "sync_list"]
