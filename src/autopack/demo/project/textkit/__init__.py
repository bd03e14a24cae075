"""textkit: small, dependable text utilities."""
