"""The HTTP API on 127.0.0.1, as API Gateway serves it in AWS.

A small HTTP server plays API Gateway's REST API in front of the real handler
(`mailgate.entrypoints.api`): it checks what API Gateway checks first — the application's API key
(`x-api-key`, a key of the stack's usage plan, read from the emulator) and the caller's SigV4
signature (verified with botocore's signer against the local stack's credentials) — then turns
the request into the proxy event API Gateway sends a Lambda function (the sample is
events/apigateway-send-message.json) and turns the handler's answer back into HTTP.

`ApiClient` signs requests the way an application's SDK does, for the tests, the bench and the demo.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import pathlib
import re
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

from .net import LoopbackHttp

log = logging.getLogger("mailgate.local")

REPO = pathlib.Path(__file__).resolve().parents[3]
SAMPLE_EVENT = REPO / "events" / "apigateway-send-message.json"
STAGE = "api"
#: the routes of template.yaml's ApiFunction (a test keeps them equal), as resource templates
ROUTES = ("/v1/messages", "/v1/messages/{key}", "/v1/messages/{key}/raw", "/v1/threads/{id}/link",
          "/v1/suppressions/{address}")
_SIGV4 = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,\s*"
                    r"SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})")
#: SigV4 signatures older or newer than this are refused (AWS allows 15 minutes of skew)
MAX_SKEW_SECONDS = 15 * 60


def resource_for(path: str) -> tuple[str | None, dict[str, str]]:
    """The route template a path matches and its path parameters (as API Gateway passes them)."""
    parts = path.strip("/").split("/")
    for route in ROUTES:
        tparts = route.strip("/").split("/")
        if len(tparts) != len(parts):
            continue
        params = {}
        for t, p in zip(tparts, parts):
            if t.startswith("{"):
                params[t[1:-1]] = p
            elif t != p:
                break
        else:
            return route, params
    return None, {}


def proxy_event(method: str, path: str, query: str, headers: dict[str, str], body: bytes, *,
                api_key_id: str = "", caller: str = "") -> dict[str, Any]:
    """The REST API proxy event (payload format 1.0) API Gateway sends for this request."""
    resource, params = resource_for(path)
    event = json.loads(SAMPLE_EVENT.read_text())
    pairs = parse_qsl(query, keep_blank_values=True)
    try:
        text, binary = (body.decode("utf-8") if body else None), False
    except UnicodeDecodeError:  # API Gateway passes a body that is not text base64-encoded
        text, binary = base64.b64encode(body).decode(), True
    event.update({
        "resource": resource or path, "path": path, "httpMethod": method,
        "headers": dict(headers), "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": dict(pairs) or None,
        "multiValueQueryStringParameters": {k: [v for kk, v in pairs if kk == k] for k, _ in pairs} or None,
        "pathParameters": params or None, "stageVariables": None,
        "body": text, "isBase64Encoded": binary,
    })
    now = datetime.now(timezone.utc)
    event["requestContext"].update({
        "resourcePath": resource or path, "httpMethod": method, "path": f"/{STAGE}{path}", "stage": STAGE,
        "requestId": str(uuid.uuid4()), "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "requestTimeEpoch": int(now.timestamp() * 1000),
    })
    event["requestContext"]["identity"].update({"apiKeyId": api_key_id, "apiKey": headers.get("x-api-key", ""),
                                                "caller": caller, "sourceIp": "127.0.0.1"})
    return event


def verify_sigv4(method: str, url: str, headers: dict[str, str], body: bytes,
                 secret_for: Callable[[str], str | None], now: float | None = None) -> str | None:
    """None when the request's SigV4 signature is right; else why not (API Gateway's 403)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    lower = {k.lower(): v for k, v in headers.items()}
    m = _SIGV4.fullmatch(lower.get("authorization", "").strip())
    if not m:
        return "Missing Authentication Token"
    access_key, _, region, service, signed, signature = m.groups()
    secret = secret_for(access_key)
    if secret is None:
        return "The security token included in the request is invalid."
    amz_date = lower.get("x-amz-date", "")
    try:
        when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return "Missing X-Amz-Date"
    if abs((now or time.time()) - when) > MAX_SKEW_SECONDS:
        return "Signature expired"
    names = signed.split(";")
    request = AWSRequest(method=method, url=url, data=body, headers={k: lower[k] for k in names if k in lower})
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(access_key, secret), service, region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, signature):
        return ("The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method.")
    return None


class ApiKeys:
    """The values of the usage plan's API keys, read from the emulator (again when one is unknown)."""

    def __init__(self, apigateway, plan_id: str) -> None:
        self.client, self.plan_id = apigateway, plan_id
        self._values: dict[str, str] = {}
        self._lock = threading.Lock()

    def id_of(self, value: str) -> str | None:
        if not value:
            return None
        with self._lock:
            if value not in self._values:
                self._values = {}
                for item in self.client.get_usage_plan_keys(usagePlanId=self.plan_id).get("items", []):
                    got = self.client.get_api_key(apiKey=item["id"], includeValue=True)
                    if got.get("enabled", True):
                        self._values[got["value"]] = got["id"]
            return self._values.get(value)


class LocalApi(LoopbackHttp):
    """API Gateway for the local stack: `LocalApi(invoke, keys, credentials).start(port)`."""

    def __init__(self, invoke: Callable[[dict], dict], keys: ApiKeys, credentials: dict[str, str],
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.invoke, self.keys, self.credentials = invoke, keys, credentials
        self.host, self.port = host, port
        self.requests = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, bytes]:
        """What API Gateway answers: its own 403s first, then the function's response."""
        self.requests += 1
        u = urlsplit(target)
        path = u.path[len(f"/{STAGE}"):] if u.path.startswith(f"/{STAGE}/") else u.path
        lower = {k.lower(): v for k, v in headers.items()}
        key_id = self.keys.id_of(lower.get("x-api-key", ""))
        if key_id is None:
            return _gateway_error(403, "Forbidden")
        why = verify_sigv4(method, f"http://{lower.get('host', self.host)}{target}", headers, body,
                           self.credentials.get)
        if why:
            return _gateway_error(403, why)
        if resource_for(path)[0] is None:
            return _gateway_error(403, "Missing Authentication Token")  # API Gateway's answer to no route
        event = proxy_event(method, path, u.query, headers, body, api_key_id=key_id, caller="local")
        response = self.invoke(event)
        out = response.get("body") or ""
        data = base64.b64decode(out) if response.get("isBase64Encoded") else out.encode()
        return int(response.get("statusCode", 502)), dict(response.get("headers") or {}), data


def _gateway_error(status: int, message: str) -> tuple[int, dict, bytes]:
    return status, {"Content-Type": "application/json", "x-amzn-ErrorType": "ForbiddenException"}, \
        json.dumps({"message": message}).encode()


class _Handler(BaseHTTPRequestHandler):
    gateway: LocalApi
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            status, headers, data = self.gateway.answer(self.command, self.path, dict(self.headers.items()), body)
        except Exception:  # noqa: BLE001 - API Gateway answers 502 when the function fails
            log.exception("the API handler failed")
            status, headers, data = 502, {"Content-Type": "application/json"}, b'{"message": "Internal server error"}'
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("content-length", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_PUT = _serve


class ApiClient:
    """Calls the HTTP API as an application does: SigV4-signed (service execute-api) with its API key."""

    def __init__(self, base_url: str, api_key: str, access_key: str = "testing", secret_key: str = "testing",
                 region: str = "us-east-1") -> None:
        self.base_url, self.api_key = base_url.rstrip("/"), api_key
        self.access_key, self.secret_key, self.region = access_key, secret_key, region

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
             *, sign: bool = True) -> tuple[int, Any]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        from http.client import HTTPConnection

        data = json.dumps(body).encode() if body is not None else b""
        request = AWSRequest(method=method, url=self.base_url + path, data=data,
                             headers={"x-api-key": self.api_key, "Content-Type": "application/json",
                                      **(headers or {})})
        if sign:
            SigV4Auth(Credentials(self.access_key, self.secret_key), "execute-api", self.region).add_auth(request)
        u = urlsplit(self.base_url + path)
        conn = HTTPConnection(u.hostname, u.port, timeout=30)
        try:
            conn.request(method, u.path + (f"?{u.query}" if u.query else ""), body=data or None,
                         headers=dict(request.headers.items()))
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            return resp.status, raw.decode("utf-8", "replace")


LocalApi._handler, LocalApi._owner_attr = _Handler, "gateway"
