"""Reads of activation: activations, destinations, syncs and deliveries."""
from activation.models import Activation


def activation_count() -> int:
    return Activation.objects.filter(enabled=True).count()
