"""Plain typed async functions that do the work behind each kopf handler in `main`."""
