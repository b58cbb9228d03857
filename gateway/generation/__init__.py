"""The parts /v1/completions and /v1/chat/completions (and later APIs over the same Generate
calls) share: their common fields, the answers' shapes and builder, and running the calls."""
