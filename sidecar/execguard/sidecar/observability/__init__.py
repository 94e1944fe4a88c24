"""Metrics, drift statistics, the decision audit log and structured logs."""
