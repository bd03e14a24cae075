"""Projects domain."""
