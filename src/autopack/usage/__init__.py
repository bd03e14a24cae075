"""Usage domain."""
