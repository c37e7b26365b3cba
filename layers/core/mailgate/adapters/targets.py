"""The application's delivery targets over HTTP: Odoo's external API and Standard Webhooks.

- Odoo over XML-RPC (Odoo up to 19): `/xmlrpc/2/common` `authenticate(db, login, key, {})`, then
  `/xmlrpc/2/object` `execute_kw(db, uid, key, "mail.thread", "message_process", [False, raw])`
  with the raw message as an XML-RPC base64 value (`xmlrpc.client.Binary`), exactly as Odoo's
  own mail gateway script (addons/mail/static/scripts/odoo-mailgate.py) does. The user id is kept
  (in the target, and per warm process), so a delivery makes one call; an "Access Denied" fault
  on a kept id authenticates again once.
- Odoo over JSON-2 (Odoo 19 and later): `POST /json/2/mail.thread/message_process` with
  `Authorization: bearer <API key>`, `X-Odoo-Database`, and the named arguments `{"model":
  false, "message": "<raw>"}`. JSON carries text only: Odoo encodes the string as UTF-8 again
  (`message.encode('utf-8')` in `message_process`), so a message is byte-identical over JSON-2
  only when its bytes are UTF-8; others are refused with a reason (use XML-RPC for that target).
- Webhooks: an HTTPS POST of the JSON payload signed per the Standard Webhooks specification
  (`webhook-id`, `webhook-timestamp`, `webhook-signature`, with the `standardwebhooks` package);
  every valid secret signs, so a receiver holding either the old or the new one verifies during a
  rotation.

What the target answers is a `DeliveryAnswer`, never an exception: a timeout, a refused
connection, 408, 429 and 5xx are "retry" (with the Retry-After the target gave); an XML-RPC fault
and any other 4xx are "failed", with the fault string or the status and the head of the body.
"""

from __future__ import annotations

import email.utils
import json
import ssl
import time
import xmlrpc.client
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from typing import Any
from urllib.parse import urlsplit

from ..checks import Step
from ..domain import DeliveryTarget
from ..ports import Delivery, DeliveryAnswer

USER_AGENT = "mailgate (+https://github.com/mailgate)"
#: what is kept of an answer's body: enough for Odoo's error object or a receiver's message
MAX_BODY = 64 * 1024
DETAIL_CHARS = 500
#: XML-RPC fault codes of Odoo's /xmlrpc/2 endpoints (odoo/addons/rpc/controllers/xmlrpc.py)
FAULT_ACCESS_DENIED = 3


class HttpTargets:
    """`ports.TargetClients` over http.client and xmlrpc.client (no third-party HTTP library)."""

    def __init__(self, *, cafile: str | None = None) -> None:
        self.cafile = cafile
        #: Odoo user ids by (url, database, login): authenticate once per warm process
        self._uids: dict[tuple[str, str, str], int] = {}

    def _context(self, target: DeliveryTarget) -> ssl.SSLContext:
        if not target.verify_tls:
            return ssl._create_unverified_context()  # noqa: S323 - asked for by the operator (--no-verify-tls)
        return ssl.create_default_context(cafile=self.cafile)

    def deliver(self, target: DeliveryTarget, secrets: list[str], delivery: Delivery) -> DeliveryAnswer:
        if target.kind == "webhook":
            return self._webhook(target, secrets, delivery)
        if target.api == "json2":
            return self._json2(target, secrets[0], delivery)
        return self._xmlrpc(target, secrets[0], delivery)

    # --- Standard Webhooks ---------------------------------------------------------------------

    def _webhook(self, target: DeliveryTarget, secrets: list[str], delivery: Delivery) -> DeliveryAnswer:
        body = json.dumps(delivery.payload, separators=(",", ":"), default=str).encode()
        headers = {"Content-Type": "application/json", **sign(secrets, delivery.delivery_id, body)}
        try:
            status, head, data = request(target.url, "POST", body, headers, target.timeout_seconds,
                                         self._context(target))
        except (OSError, HTTPException) as exc:
            return DeliveryAnswer("retry", detail=f"{target.url} unreachable: {_error(exc)}")
        return classify(status, head, data)

    # --- Odoo over JSON-2 ------------------------------------------------------------------------

    def _json2(self, target: DeliveryTarget, key: str, delivery: Delivery) -> DeliveryAnswer:
        try:
            message = (delivery.raw or b"").decode("utf-8")
        except UnicodeDecodeError:
            return DeliveryAnswer("failed", detail="the message has 8-bit bytes that are not UTF-8, and JSON-2 "
                                  "carries text only (Odoo would change them): deliver it over XML-RPC "
                                  "(`mailgate target add-odoo NAME ... --api xmlrpc`), then `mailgate "
                                  "deliveries retry`", calls=0)
        answer, result = self._json2_call(target, key, "mail.thread", "message_process",
                                          {"model": False, "message": message})
        if answer is not None:
            return answer
        return _processed(result)

    def _json2_call(self, target: DeliveryTarget, key: str, model: str, method: str,
                    args: dict[str, Any]) -> tuple[DeliveryAnswer | None, Any]:
        headers = {"Content-Type": "application/json; charset=utf-8", "Authorization": f"bearer {key}"}
        if target.database:
            headers["X-Odoo-Database"] = target.database
        url = f"{target.url.rstrip('/')}/json/2/{model}/{method}"
        try:
            status, head, data = request(url, "POST", json.dumps(args).encode(), headers, target.timeout_seconds,
                                         self._context(target))
        except (OSError, HTTPException) as exc:
            return DeliveryAnswer("retry", detail=f"{target.url} unreachable: {_error(exc)}"), None
        if status != 200:
            return classify(status, head, data, describe=_odoo_error), None
        try:
            return None, json.loads(data)
        except ValueError:
            return DeliveryAnswer("retry", status, f"Odoo answered 200 with a body that is not JSON: "
                                  f"{_head(data)}"), None

    # --- Odoo over XML-RPC -----------------------------------------------------------------------

    def _proxy(self, target: DeliveryTarget, service: str) -> xmlrpc.client.ServerProxy:
        https = target.url.lower().startswith("https:")
        transport = _Transport(target.timeout_seconds, self._context(target) if https else None, https)
        return xmlrpc.client.ServerProxy(f"{target.url.rstrip('/')}/xmlrpc/2/{service}", transport=transport,
                                         allow_none=True)

    def _uid(self, target: DeliveryTarget, key: str, *, fresh: bool = False) -> int:
        """The user id: kept, or from `authenticate` (0 when Odoo refused the login)."""
        cache = (target.url, target.database, target.user)
        if not fresh and (target.uid or cache in self._uids):
            return self._uids.get(cache) or target.uid
        uid = self._proxy(target, "common").authenticate(target.database, target.user, key, {})
        self._uids[cache] = int(uid or 0)
        return self._uids[cache]

    def _xmlrpc(self, target: DeliveryTarget, key: str, delivery: Delivery) -> DeliveryAnswer:
        calls, fresh = 0, False
        try:
            for _ in range(2):
                known = not fresh and (target.uid or (target.url, target.database, target.user) in self._uids)
                uid = self._uid(target, key, fresh=fresh)
                calls += 0 if known else 1
                if not uid:
                    return DeliveryAnswer("failed", detail=f"Odoo refused the login {target.user!r} on database "
                                          f"{target.database!r}: check the user and the API key "
                                          "(`mailgate target test`)", calls=calls)
                try:
                    calls += 1
                    result = self._proxy(target, "object").execute_kw(
                        target.database, uid, key, "mail.thread", "message_process",
                        [False, xmlrpc.client.Binary(delivery.raw or b"")], {})
                except xmlrpc.client.Fault as fault:
                    if fault.faultCode == FAULT_ACCESS_DENIED and known:
                        fresh = True  # a kept user id that no longer works: authenticate again, once
                        continue
                    return DeliveryAnswer("failed", detail=fault_text(fault), calls=calls)
                answer = _processed(result)
                answer.calls = calls
                return answer
        except xmlrpc.client.ProtocolError as exc:
            answer = classify(exc.errcode, dict(exc.headers or {}), exc.errmsg.encode())
            answer.calls = max(calls, 1)
            return answer
        except (OSError, HTTPException, xmlrpc.client.ResponseError, ValueError) as exc:
            return DeliveryAnswer("retry", detail=f"{target.url} unreachable: {_error(exc)}", calls=max(calls, 1))
        return DeliveryAnswer("failed", detail="Odoo refused the user id twice (Access Denied)", calls=calls)

    # --- Test Connection ---------------------------------------------------------------------------

    def test_connection(self, target: DeliveryTarget, secrets: list[str]) -> list[Step]:
        if target.kind == "webhook":
            return self._test_webhook(target, secrets)
        if target.api == "json2":
            return self._test_json2(target, secrets[0])
        return self._test_xmlrpc(target, secrets[0])

    def _test_webhook(self, target: DeliveryTarget, secrets: list[str]) -> list[Step]:
        ping = Delivery(message_key="", delivery_id=f"ping_{int(time.time())}",
                        payload={"type": "mailgate.ping", "timestamp": _iso_now(), "data": {"target": target.name}})
        answer = self._webhook(target, secrets, ping)
        ok = answer.outcome == "delivered"
        return [Step("post", ok, f"a signed mailgate.ping was answered {answer.status}" if ok else answer.detail)]

    def _test_xmlrpc(self, target: DeliveryTarget, key: str) -> list[Step]:
        steps: list[Step] = []
        try:
            version = self._proxy(target, "common").version()
            steps.append(Step("reach", True, f"Odoo {version.get('server_version', '?')} at {target.url}"))
            uid = self._uid(target, key, fresh=True)
            if not uid:
                return steps + [Step("authenticate", False, f"Odoo refused the login {target.user!r} on database "
                                     f"{target.database!r}: check the login and the API key")]
            steps.append(Step("authenticate", True, f"{target.user} is user {uid}"))
            steps.append(self._xmlrpc_callable(target, key, uid))
        except xmlrpc.client.Fault as fault:
            steps.append(Step("authenticate" if len(steps) == 1 else "reach", False, fault_text(fault)))
        except (OSError, HTTPException, xmlrpc.client.ProtocolError, xmlrpc.client.ResponseError) as exc:
            steps.append(Step("reach" if not steps else "authenticate", False,
                              f"{target.url}: {_error(exc)} (is the URL right, and Odoo's XML-RPC reachable?)"))
        return steps

    def _xmlrpc_callable(self, target: DeliveryTarget, key: str, uid: int) -> Step:
        """Call message_process without its arguments: Odoo looks the method up and checks access,
        then refuses the call for the missing arguments, and nothing is delivered."""
        try:
            self._proxy(target, "object").execute_kw(target.database, uid, key, "mail.thread", "message_process",
                                                     [], {})
        except xmlrpc.client.Fault as fault:
            text = fault.faultString or ""
            if "missing" in text and "argument" in text:
                return Step("message_process", True, "mail.thread.message_process is callable by this user")
            return Step("message_process", False, fault_text(fault))
        return Step("message_process", True, "mail.thread.message_process answered")

    def _test_json2(self, target: DeliveryTarget, key: str) -> list[Step]:
        try:
            status, _, data = request(f"{target.url.rstrip('/')}/web/version", "GET", None, {},
                                      target.timeout_seconds, self._context(target))
        except (OSError, HTTPException) as exc:
            return [Step("reach", False, f"{target.url}: {_error(exc)}")]
        if status != 200:
            return [Step("reach", False, f"GET /web/version answered {status}: {_head(data)}")]
        version = _json(data).get("version", "?") if isinstance(_json(data), dict) else "?"
        steps = [Step("reach", True, f"Odoo {version} at {target.url}")]
        answer, _ = self._json2_call(target, key, "res.users", "context_get", {})
        if answer is not None:
            return steps + [Step("authenticate", False, answer.detail)]
        steps.append(Step("authenticate", True, "the API key is accepted"))
        answer, _ = self._json2_call(target, key, "mail.thread", "message_process", {})
        ok = answer is not None and answer.status == 422  # Odoo bound the arguments and refused: callable
        return steps + [Step("message_process", ok, "mail.thread.message_process is callable with this key"
                             if ok else (answer.detail if answer else "message_process ran without arguments"))]


class _Transport(xmlrpc.client.SafeTransport):
    """xmlrpc.client's transport with a timeout, over HTTPS (with our TLS context) or HTTP."""

    def __init__(self, timeout: float, context: ssl.SSLContext | None, https: bool) -> None:
        super().__init__(context=context)
        self.timeout, self.https = timeout, https

    def make_connection(self, host):
        if self.https:
            conn = super().make_connection(host)
        else:
            conn = xmlrpc.client.Transport.make_connection(self, host)
        conn.timeout = self.timeout
        return conn


def request(url: str, method: str, body: bytes | None, headers: dict[str, str], timeout: float,
            context: ssl.SSLContext | None) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request: (status, headers, the first MAX_BODY bytes of the body)."""
    u = urlsplit(url)
    if u.scheme == "https":
        conn = HTTPSConnection(u.hostname, u.port, timeout=timeout, context=context)
    elif u.scheme == "http":
        conn = HTTPConnection(u.hostname, u.port, timeout=timeout)
    else:
        raise OSError(f"unsupported URL scheme {u.scheme!r}")
    try:
        conn.request(method, (u.path or "/") + (f"?{u.query}" if u.query else ""), body=body,
                     headers={"User-Agent": USER_AGENT, **headers})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read(MAX_BODY)
    finally:
        conn.close()


def sign(secrets: list[str], delivery_id: str, body: bytes, when: float | None = None) -> dict[str, str]:
    """The Standard Webhooks headers: one `v1,` signature per valid secret, space-separated."""
    from datetime import datetime, timezone

    from standardwebhooks import Webhook

    at = datetime.fromtimestamp(int(when if when is not None else time.time()), timezone.utc)
    signatures = " ".join(Webhook(s).sign(delivery_id, at, body) for s in secrets)
    return {"webhook-id": delivery_id, "webhook-timestamp": str(int(at.timestamp())), "webhook-signature": signatures}


def classify(status: int, headers: dict[str, str], body: bytes, *, describe=None) -> DeliveryAnswer:
    """An HTTP answer as a delivery outcome: 2xx delivered; 408, 429, 5xx retried; other 4xx failed."""
    if 200 <= status < 300:
        return DeliveryAnswer("delivered", status, f"HTTP {status}")
    detail = (describe or _plain)(status, body)
    if status in (408, 429) or status >= 500:
        return DeliveryAnswer("retry", status, detail, retry_after=retry_after(headers.get("retry-after", "")))
    return DeliveryAnswer("failed", status, detail)


def retry_after(value: str, now: float | None = None) -> float | None:
    """RFC 9110 §10.2.3: delay-seconds or an HTTP-date."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (now if now is not None else time.time()))


def fault_text(fault: xmlrpc.client.Fault) -> str:
    """An XML-RPC fault in a line or few: Odoo puts a traceback in it, whose end says what happened."""
    text = (fault.faultString or "").strip()
    if len(text) > DETAIL_CHARS:
        text = "…" + text[-DETAIL_CHARS:]
    return f"XML-RPC fault {fault.faultCode}: {text}"


def _processed(result: Any) -> DeliveryAnswer:
    """message_process returns the thread's id, or False when Odoo already has the Message-ID."""
    if result is False:
        return DeliveryAnswer("duplicate", 200, "Odoo already had this Message-ID (message_process returned False)")
    return DeliveryAnswer("delivered", 200, f"message_process returned {result!r}"[:DETAIL_CHARS])


def _plain(status: int, body: bytes) -> str:
    return f"HTTP {status}: {_head(body)}"


def _odoo_error(status: int, body: bytes) -> str:
    """JSON-2's error object: {name, message, arguments, context, debug}."""
    error = _json(body)
    if isinstance(error, dict) and error.get("name"):
        return f"HTTP {status} {error['name']}: {str(error.get('message', ''))[:DETAIL_CHARS]}"
    return _plain(status, body)


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def _head(data: bytes) -> str:
    return data[:DETAIL_CHARS].decode("utf-8", "replace").strip() or "(empty body)"


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:DETAIL_CHARS]


def _iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
