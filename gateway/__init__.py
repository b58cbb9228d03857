"""The HTTP gateway: OpenAI-compatible JSON and the seed API on :8080, over the router."""
