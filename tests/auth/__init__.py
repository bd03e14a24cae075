"""Tests of API keys, scopes, the rate limit and CORS."""
