"""The gateway's own routes, none part of the OpenAI API: liveness, readiness, metrics and the
API docs."""
