"""The API docs (Swagger UI, ReDoc) and the OpenAPI schema, behind the keys like /metrics:
FastAPI's own routes for them take no dependencies, so they are served here instead."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

from gateway.auth import require_key_unless_open

router = APIRouter(dependencies=[Depends(require_key_unless_open)], include_in_schema=False)
SCHEMA_URL = "/openapi.json"


@router.get(SCHEMA_URL)
async def openapi(request: Request) -> dict[str, Any]:
    app = request.app
    if app.openapi_schema is None:
        schema = app.openapi()
        for path in schema.get("paths", {}).values():  # FastAPI lists 422 for every body; ours is a 400
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        app.openapi_schema = schema
    return dict(app.openapi_schema)


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url=SCHEMA_URL, title="switchyard")


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return get_redoc_html(openapi_url=SCHEMA_URL, title="switchyard")
