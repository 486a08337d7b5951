"""The REST API (FastAPI) under /api/v1, plus /healthz and /metrics."""
