"""gRPC services: one package per engine, plus the router."""
