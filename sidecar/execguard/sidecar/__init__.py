"""The execguard sidecar: a validating reverse proxy in front of the model container."""
