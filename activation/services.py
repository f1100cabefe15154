"""Every write to activation: destinations, activations, syncs and deliveries."""
