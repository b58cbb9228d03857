"""The router: the same Inference and Control services as an engine, over many backends."""
