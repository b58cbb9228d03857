"""POST /v1/responses (OpenAI's Responses API) and GET/DELETE of stored responses: routes,
request models, the translation onto a chat, the answer's shape and the bounded store."""
