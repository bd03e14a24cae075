"""The HTTP API: the app factory, dependencies, error handling, health and the dashboard."""
