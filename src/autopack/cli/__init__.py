"""Cli domain."""
