"""Service runtime shared by every switchyard process: settings, logging, gRPC bootstrap."""
