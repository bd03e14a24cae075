"""Issues domain."""
