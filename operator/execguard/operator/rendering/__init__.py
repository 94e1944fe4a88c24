"""Rendering of policies into what the sidecar reads: the config document and its ConfigMap."""
