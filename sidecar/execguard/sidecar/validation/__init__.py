"""Checks on content: JSON Schema, redaction, policy decisions, OpenAI body shapes."""
