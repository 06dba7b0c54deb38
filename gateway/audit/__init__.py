"""The audit trail: append-only events per request, the decision durable before a byte is served."""
