"""The execguard operator: reconciles the custom resources, evaluates thresholds and drift, acts."""
