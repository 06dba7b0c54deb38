"""The client-facing HTTP layer: the protocol class uvicorn runs (limits, TLS, connection
facts for the app) and the TLS context."""
