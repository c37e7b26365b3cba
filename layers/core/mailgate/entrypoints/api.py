"""The HTTP API (API Gateway REST API, proxy integration), through Powertools' event handler.

Every route is one call of a plain function of `mailgate.services.api`; this module only reads the
request and writes the answer. docs/openapi.yaml describes the API; API Gateway has checked the
caller's SigV4 signature (IAM) and API key before the event arrives.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types

from ..compose import InvalidRequest
from ..errors import InvalidInput, MailgateError, NotFound, TransientError
from ..services import api
from ._runtime import container, count, logger, metrics

app = APIGatewayRestResolver()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    count("ApiRequests")
    return app.resolve(event, context)


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body=json.dumps(body, default=str))


def _body() -> Any:
    try:
        return app.current_event.json_body
    except (ValueError, TypeError):
        raise InvalidRequest("the body is not JSON", code="bad-request", field="body") from None


def _domain() -> str | None:
    return (app.current_event.query_string_parameters or {}).get("domain") or None


@app.post("/v1/messages")
def send_message() -> Response:
    key = app.current_event.headers.get("Idempotency-Key")  # case-insensitive (Powertools v3)
    result = api.send(container(), _body(), key)
    return _json(200 if result["duplicate"] else 202, result)


@app.get("/v1/messages/<key>")
def get_message(key: str) -> Response:
    return _json(200, api.message(container(), unquote(key)))


@app.get("/v1/messages/<key>/raw")
def get_raw(key: str) -> Response:
    return _json(200, api.raw_url(container(), unquote(key)))


@app.post("/v1/threads/<thread_id>/link")
def link_thread(thread_id: str) -> Response:
    body = _body()
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object {model, record_id}")
    return _json(200, api.link_thread(container(), unquote(thread_id), body.get("model"), body.get("record_id")))


@app.get("/v1/suppressions/<address>")
def get_suppression(address: str) -> Response:
    return _json(200, api.suppression_of(container(), unquote(address), _domain()))


@app.delete("/v1/suppressions/<address>")
def lift_suppression(address: str) -> Response:
    return _json(200, api.lift_suppression(container(), unquote(address), _domain()))


@app.exception_handler(MailgateError)
def _error(exc: MailgateError) -> Response:
    """The core's errors as answers: what was wrong, in words, with a machine code."""
    if isinstance(exc, (InvalidRequest, InvalidInput)):
        status = 400
    elif isinstance(exc, NotFound):
        status = 404
    elif isinstance(exc, api.Conflict):
        status = 409
    elif isinstance(exc, TransientError):
        status = 503
    else:
        status = 422
    body = {"error": getattr(exc, "code", "error"), "message": str(exc)}
    if getattr(exc, "field", ""):
        body["field"] = exc.field
    return _json(status, body)


@app.not_found
def _not_found(exc) -> Response:
    return _json(404, {"error": "not-found", "message": "no such route: see docs/openapi.yaml"})
