"""Limits checked before the model is called: body size, concurrency, rate, tokens, sessions."""
