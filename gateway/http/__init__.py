"""The client-facing HTTP layer: what uvicorn runs in front of the application."""
