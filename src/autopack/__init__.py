"""Autopack: a self-hosted orchestrator for autonomous, governed, budgeted coding runs."""

__version__ = "0.1.0"
