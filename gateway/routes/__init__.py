"""The gateway's routes, one module per part of the API; ``create_app`` includes them."""
