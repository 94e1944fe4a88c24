"""Development kit: a real local control plane, a node simulator and the binaries they run.

Not part of the product runtime path; used by tests, the demo and `execguard dev`.
"""
