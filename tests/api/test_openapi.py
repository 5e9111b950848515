"""GET /openapi.json is a valid OpenAPI document that describes every route."""

from __future__ import annotations

import re

import schemathesis

from service.api.openapi import document


def test_openapi_document_is_valid_openapi(api):
    doc = api.get("/openapi.json").json

    schema = schemathesis.openapi.from_dict(doc)

    schema.validate()
    assert all(result.ok() for result in schema.get_all_operations())


def test_openapi_document_covers_every_route(app):
    doc = document(app)

    routes = {
        (method.lower(), re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    described = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert described == routes
    # Every operation says what it answers, not a bare outline.
    for path, ops in doc["paths"].items():
        for method, operation in ops.items():
            ok = operation["responses"]["200"]["content"]
            assert next(iter(ok.values()))["schema"] != {"type": "object"}, (method, path)


def test_api_operations_describe_their_parameters_and_errors(app):
    doc = document(app)

    for path, ops in doc["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in ops.items():
            if method == "post":
                body = operation["requestBody"]["content"]["application/json"]["schema"]
                assert body["additionalProperties"] is False, path
            else:
                names = {p["name"] for p in operation["parameters"]}
                assert "expand[]" in names, (method, path)
            for status in ("400", "401"):
                error = operation["responses"][status]["content"]["application/json"]["schema"]
                assert error == {"$ref": "#/components/schemas/error"}


def test_includable_fields_are_optional_and_nullable_fields_nullable(app):
    invoice = document(app)["components"]["schemas"]["invoice"]

    assert "payments" in invoice["properties"]
    assert "payments" not in invoice["required"]
    assert invoice["properties"]["due_date"]["nullable"] is True
    assert invoice["properties"]["ending_balance"]["nullable"] is True
    assert invoice["properties"]["customer"]["anyOf"][1] == {
        "$ref": "#/components/schemas/customer"
    }


def test_nested_and_list_query_parameters_are_in_stripe_bracket_notation(app):
    listing = document(app)["paths"]["/v1/invoices"]["get"]["parameters"]

    names = {p["name"] for p in listing}
    assert {"expand[]", "created", "created[gte]", "due_date[lt]", "status"} <= names
    assert "due_date" in names  # a range parameter also takes one timestamp


def test_a_field_of_one_response_only_is_optional(app):
    endpoint = document(app)["components"]["schemas"]["webhook_endpoint"]

    assert "secret" in endpoint["properties"]
    assert "secret" not in endpoint["required"]
    assert "url" in endpoint["required"]
