"""POST /v1/completions: its routes, its request model and its serving object."""
