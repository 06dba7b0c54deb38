"""The client-facing HTTP layer: the protocol class uvicorn runs (limits, TLS, connection
facts for the app), the TLS context, and the response that streams zips honestly."""
