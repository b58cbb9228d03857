"""POST /v1/chat/completions: its routes, its request model (and the chat's parts, which
/tokenize takes too) and its serving object."""
