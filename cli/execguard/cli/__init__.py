"""The `execguard` command line: one entry point for the operator, the webhook,
the sidecar, policy tooling and the local development cluster.

Each command group lives in its own module and imports its heavy dependencies
only when it runs, so `execguard sidecar` works in an image that installed
only the `sidecar` extra.
"""
