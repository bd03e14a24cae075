"""Observability: structured logs (``logging``), request ids (``request_id``) and Prometheus
metrics (``metrics``). See docs/observability.md."""
