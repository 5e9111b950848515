"""GET /openapi.json: the routes this app serves, as an OpenAPI 3 outline."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, current_app

from service.config import API_VERSION

bp = Blueprint("openapi", __name__)

_PATH_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


@bp.get("/openapi.json")
def openapi() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for rule in current_app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = _PATH_PARAM.sub(r"{\1}", rule.rule)
        names = _PATH_PARAM.findall(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operation: dict[str, Any] = {
                "operationId": f"{method.lower()}_{rule.endpoint.replace('.', '_')}",
                "parameters": [
                    {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                    for n in names
                ],
                "responses": {
                    "200": {"description": "The object, or a list object"},
                    "default": {"description": 'Stripe\'s error object: {"error": {...}}'},
                },
            }
            if path.startswith("/v1/"):
                operation["security"] = [{"bearer": []}, {"basic": []}]
            if method == "POST":
                operation["requestBody"] = {
                    "content": {
                        "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                        "application/json": {"schema": {"type": "object"}},
                    }
                }
            paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {"title": "Tally", "version": API_VERSION},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
            }
        },
        "paths": dict(sorted(paths.items())),
    }
