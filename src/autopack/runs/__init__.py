"""Runs domain."""
