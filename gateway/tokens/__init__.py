"""/tokenize and /detokenize: routes and request models."""
