"""Status conditions, written following the Kubernetes API conventions."""
