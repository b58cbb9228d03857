"""POST /v1/messages and /v1/messages/count_tokens (Anthropic's Messages API): routes, request
models, the translation onto a chat and the answer's shape; errors in Anthropic's body."""
