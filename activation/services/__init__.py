"""Every write to activation: destinations, activations, syncs and deliveries (re-exported from the modules)."""
from activation.services.personal_data import personal_data_erase, personal_data_export

__all__ = ["personal_data_erase", "personal_data_export"]
