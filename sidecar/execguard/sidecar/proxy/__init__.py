"""Forwarding to the model container: headers, the pooled client, SSE relay, the handler."""
