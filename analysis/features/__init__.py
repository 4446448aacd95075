"""Feature-level methods scored against the planted variables (placeholder until the features branch lands)."""
