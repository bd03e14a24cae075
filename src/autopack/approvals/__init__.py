"""Approvals domain."""
