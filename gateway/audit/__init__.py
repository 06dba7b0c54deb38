"""The audit trail: one record per request, durable before a byte is served."""
