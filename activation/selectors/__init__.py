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
from activation.selectors.personalization import (
    Personalization,
    offer_list,
    offers_cache_clear,
    offers_enabled,
    personalization_for,
    personalization_for_profile,
)

__all__ = ["Personalization", "activation_count", "activations_with_status", "dead_letters", "delivery_list",
           "destinations_with_usage", "failed_deliveries_count", "offer_list", "offers_cache_clear",
           "offers_enabled", "personalization_for", "personalization_for_profile", "profile_delivery_log",
           "sync_list"]
