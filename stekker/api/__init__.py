"""The operator REST API (FastAPI). Routers are thin: parse, call a service, shape the answer."""
