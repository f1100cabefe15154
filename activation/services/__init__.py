"""Every write to activation: destinations, activations, syncs and deliveries (re-exported from the modules)."""
from activation.services.activations import ActivationInvalid, activation_create, activation_delete, activation_update
from activation.services.deliveries import (
    NotResendable,
    deliveries_stalled,
    delivery_attempt,
    delivery_logs_delete_batch,
    delivery_resend,
    destinations_forget,
)
from activation.services.destinations import (
    DestinationSaved,
    destination_create,
    destination_delete,
    destination_secrets_rotate,
    destination_test,
    destination_update,
)
from activation.services.offers import OfferInvalid, offer_create, offer_delete, offer_update
from activation.services.personal_data import personal_data_erase, personal_data_export
from activation.services.syncs import activations_due, sync_finish, sync_run

__all__ = [
    "ActivationInvalid", "DestinationSaved", "NotResendable", "OfferInvalid", "activation_create", "activation_delete",
    "activation_update", "activations_due", "deliveries_stalled", "delivery_attempt",
    "delivery_logs_delete_batch", "delivery_resend",
    "destination_create", "destination_delete", "destination_secrets_rotate", "destination_test",
    "destination_update", "destinations_forget",
    "offer_create", "offer_delete", "offer_update", "personal_data_erase", "personal_data_export", "sync_finish",
    "sync_run",
]
