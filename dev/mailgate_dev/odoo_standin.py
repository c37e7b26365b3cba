"""An Odoo stand-in: the part of Odoo's documented external API that the gateway calls.

Odoo itself cannot be installed on these machines (it is on neither PyPI nor Debian), so the tests,
the bench and `mailgate dev` use this server on 127.0.0.1. It follows the documentation and Odoo's
source where they say what a client sees:

- XML-RPC (`/xmlrpc/2/common`: `version`, `authenticate(db, login, password, user_agent_env)`;
  `/xmlrpc/2/object`: `execute_kw(db, uid, password, model, method, args, kw)`), with Odoo's
  fault codes (odoo/addons/rpc/controllers/xmlrpc.py): 1 application error (a traceback: an
  unknown database or method, wrong arguments), 2 warning (UserError: an unknown model),
  3 Access Denied (wrong password or API key), 4 access error (a private method); a wrong login
  makes `authenticate` return False, not a fault.
- JSON-2 (`POST /json/2/<model>/<method>`, `Authorization: bearer <API key>`, `X-Odoo-Database`,
  named arguments only), with its error object `{name, message, arguments, context, debug}`:
  401 invalid API key, 404 unknown database, model or method, 403 private method, 422 arguments
  that do not bind (odoo/addons/rpc/controllers/json2.py); `GET /web/version`.
- `mail.thread.message_process(model, message, custom_values=None, save_original=False,
  strip_attachments=False, thread_id=None)`: the message as XML-RPC base64 (`Binary`) or a string
  (encoded as UTF-8, as Odoo does); a Message-ID it already has returns False (Odoo's duplicate
  check), else a new thread id.

It records what it was given (`received`: the raw bytes, the API, the user) and can be made
unavailable (`available = False`: 503, as a proxy in front of a stopped Odoo answers).
"""

from __future__ import annotations

import email.parser
import inspect
import json
import re
import threading
import xmlrpc.client
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from .local.net import LoopbackHttp

VERSION = {"server_version": "19.0", "server_version_info": [19, 0, 0, "final", 0, ""], "server_serie": "19.0",
           "protocol_version": 1}


def message_process(model, message, custom_values=None, save_original=False, strip_attachments=False,
                    thread_id=None):
    """mail.thread.message_process's signature (arguments are bound against it, as Odoo does)."""


def context_get():
    """res.users.context_get's signature (an @api.model method without arguments)."""


METHODS = {"mail.thread": {"message_process": message_process}, "res.users": {"context_get": context_get}}


class OdooFault(Exception):
    def __init__(self, code: int, text: str, status: int, name: str) -> None:
        super().__init__(text)
        self.code, self.text, self.status, self.name = code, text, status, name


@dataclass
class Received:
    api: str
    database: str
    uid: int
    raw: bytes
    result: Any


@dataclass
class OdooStandIn(LoopbackHttp):
    database: str = "odoo"
    login: str = "gateway@example.test"
    api_key: str = "odoo-api-key-0123456789abcdef"
    uid: int = 7
    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    #: every request, in order: (api, what was called)
    calls: list[tuple[str, str]] = field(default_factory=list)
    available: bool = True

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._message_ids: set[str] = set()
        self._next_thread = 100

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- Odoo -------------------------------------------------------------------------------------

    def check_database(self, name: str | None) -> None:
        if name not in (None, "", self.database):
            raise OdooFault(1, f'Traceback (most recent call last):\n  ...\npsycopg2.OperationalError: '
                               f'connection to server failed: FATAL:  database "{name}" does not exist',
                            404, "werkzeug.exceptions.NotFound")

    def authenticate(self, database: str, login: str, password: str) -> int | bool:
        self.check_database(database)
        return self.uid if (login, password) == (self.login, self.api_key) else False

    def call(self, api: str, database: str, model: str, method: str, args: list, kwargs: dict) -> Any:
        """Look the method up and bind the arguments as Odoo does, then run it."""
        if model not in METHODS:
            text = f"the model {model!r} does not exist" if api == "json2" else f"Object {model} doesn't exist"
            raise OdooFault(2, text, 404, "werkzeug.exceptions.NotFound")
        if method.startswith("_"):
            raise OdooFault(4, f"Private methods (such as '{model}.{method}') cannot be called remotely.", 403,
                            "odoo.exceptions.AccessError")
        func = METHODS[model].get(method)
        if func is None:
            raise OdooFault(1, f"Traceback (most recent call last):\n  ...\nAttributeError: The method "
                               f"'{model}.{method}' does not exist", 404, "werkzeug.exceptions.NotFound")
        try:
            bound = inspect.signature(func).bind(*args, **kwargs)
        except TypeError as exc:
            raise OdooFault(1, f"Traceback (most recent call last):\n  ...\nTypeError: "
                               f"{model.replace('.', '_')}.{method}() {exc}", 422,
                            "werkzeug.exceptions.UnprocessableEntity") from None
        if method == "context_get":
            return {"lang": "en_US", "tz": "Europe/Brussels", "uid": self.uid}
        return self._process(api, database, bound.arguments["message"])

    def _process(self, api: str, database: str, message: Any) -> Any:
        if isinstance(message, xmlrpc.client.Binary):
            message = bytes(message.data)
        if isinstance(message, str):
            message = message.encode("utf-8")  # as Odoo's message_process does
        if not isinstance(message, bytes):
            raise OdooFault(1, "Traceback (most recent call last):\n  ...\nTypeError: initial_value must be "
                               f"str or None, not {type(message).__name__}", 500,
                            "builtins.TypeError")
        headers = email.parser.BytesHeaderParser().parsebytes(message)
        message_id = (headers.get("Message-ID") or "").strip()
        with self._lock:
            if message_id and message_id in self._message_ids:
                result: Any = False  # "Ignored mail ... found duplicated Message-Id during processing"
            else:
                self._message_ids.add(message_id)
                self._next_thread += 1
                result = self._next_thread
            self.received.append(Received(api, database or self.database, self.uid, message, result))
        return result

    def processed(self) -> list[bytes]:
        """The raw messages Odoo processed (duplicates it dropped left out)."""
        return [r.raw for r in self.received if r.result is not False]


class _Handler(BaseHTTPRequestHandler):
    odoo: OdooStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _unavailable(self) -> bool:
        if self.odoo.available:
            return False
        self._body()
        self._send(503, b"<html><body><h1>503 Service Unavailable</h1></body></html>", "text/html")
        return True

    def do_GET(self) -> None:
        if self._unavailable():
            return
        if self.path == "/web/version":
            self.odoo.calls.append(("http", "/web/version"))
            self._send(200, json.dumps({"version_info": VERSION["server_version_info"],
                                        "version": VERSION["server_version"]}).encode(), "application/json")
        else:
            self._send(404, b"not found", "text/plain")

    def do_POST(self) -> None:
        if self._unavailable():
            return
        m = re.fullmatch(r"/json/2/([^/]+)/([^/]+)", self.path)
        if self.path in ("/xmlrpc/2/common", "/xmlrpc/2/object"):
            self._xmlrpc(self.path.rsplit("/", 1)[1])
        elif m:
            self._json2(m.group(1), m.group(2))
        else:
            self._body()
            self._json_error(404, "werkzeug.exceptions.NotFound", "Did you mean POST /json/2/<model>/<method>?")

    # --- XML-RPC -------------------------------------------------------------------------------

    def _xmlrpc(self, service: str) -> None:
        params, method = xmlrpc.client.loads(self._body())
        self.odoo.calls.append(("xmlrpc", f"{service}.{method}"))
        try:
            result = self._dispatch(service, method, list(params))
            body = xmlrpc.client.dumps((result,), methodresponse=True, allow_none=True)
        except OdooFault as fault:
            body = xmlrpc.client.dumps(xmlrpc.client.Fault(fault.code, fault.text))
        self._send(200, body.encode(), "text/xml; charset=utf-8")

    def _dispatch(self, service: str, method: str, params: list) -> Any:
        odoo = self.odoo
        if service == "common" and method == "version":
            return VERSION
        if service == "common" and method in ("authenticate", "login"):
            database, login, password = params[:3]
            return odoo.authenticate(database, login, password)
        if service == "object" and method in ("execute_kw", "execute"):
            database, uid, password, model, name = params[:5]
            odoo.check_database(database)
            if (uid, password) != (odoo.uid, odoo.api_key):
                raise OdooFault(3, "Access Denied", 401, "odoo.exceptions.AccessDenied")
            args, kwargs = (params[5] if len(params) > 5 else [], params[6] if len(params) > 6 else {}) \
                if method == "execute_kw" else (params[5:], {})
            return odoo.call("xmlrpc", database, model, name, list(args), dict(kwargs or {}))
        raise OdooFault(1, f"Traceback (most recent call last):\n  ...\nKeyError: 'Method not found: {method}'",
                        404, "werkzeug.exceptions.NotFound")

    # --- JSON-2 --------------------------------------------------------------------------------

    def _json_error(self, status: int, name: str, message: str) -> None:
        self._send(status, json.dumps({"name": name, "message": message, "arguments": [message, status],
                                       "context": {}, "debug": f"Traceback (most recent call last):\n...\n{name}: "
                                                               f"{message}\n"}).encode(),
                   "application/json; charset=utf-8")

    def _json2(self, model: str, method: str) -> None:
        odoo = self.odoo
        raw = self._body()
        odoo.calls.append(("json2", f"{model}.{method}"))
        auth = self.headers.get("Authorization") or ""
        scheme, _, key = auth.partition(" ")
        if scheme.lower() != "bearer" or key != odoo.api_key:
            return self._json_error(401, "werkzeug.exceptions.Unauthorized", "Invalid apikey")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self._json_error(400, "werkzeug.exceptions.BadRequest", "Invalid JSON data")
        if not isinstance(body, dict):
            return self._json_error(400, "werkzeug.exceptions.BadRequest", "Invalid JSON data")
        if body.pop("ids", None):
            return self._json_error(422, "werkzeug.exceptions.UnprocessableEntity",
                                    f"cannot call {model}.{method} with ids")
        body.pop("context", None)
        database = self.headers.get("X-Odoo-Database")
        try:
            odoo.check_database(database)
            result = odoo.call("json2", database or odoo.database, model, method, [], body)
        except OdooFault as fault:
            return self._json_error(fault.status, fault.name, fault.text.rsplit("\n", 1)[-1])
        self._send(200, json.dumps(result).encode(), "application/json; charset=utf-8")


OdooStandIn._handler, OdooStandIn._owner_attr = _Handler, "odoo"
