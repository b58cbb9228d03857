"""POST /v1/embeddings: its routes, its request and answer models and its serving object."""
