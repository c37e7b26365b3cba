"""SesSender: the built-in transport, SES v2 `SendEmail` with raw content and a configuration set.

The message is already composed and DKIM-signed by us. SES picks its own envelope sender (the
MAIL FROM domain configured on the identity), so the VERP address goes in
`FeedbackForwardingEmailAddress`: SES forwards the bounce there, and the bounce side reads the
message and recipient back from the token as it does for SMTP. One call per recipient, so each
bounce names exactly one recipient. The endpoint comes from AWS_ENDPOINT_URL, which boto3
honours natively (the local stack points it at the emulator).

Throttling and service errors are *deferred* (botocore's standard retry mode has already backed
off a few times); a rejected message or an unverified identity is *failed*. A call whose answer
never came (a read timeout, the connection closed after the request went out) may have been
accepted: it is *unknown*, and neither botocore nor the outbound path sends it again (SES offers
no way to ask afterwards; a duplicate is worse than a reported possible loss).
"""

from __future__ import annotations

from typing import Any

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError, ClientError, ConnectionClosedError, ConnectTimeoutError, EndpointConnectionError,
    ReadTimeoutError,
)

from ..ports import Envelope, RecipientResult

TRANSIENT_CODES = {
    "TooManyRequestsException", "Throttling", "ThrottlingException", "LimitExceededException",
    "ServiceUnavailable", "InternalFailure", "InternalServiceErrorException", "RequestTimeout",
}


def ses_client(settings=None, *, region: str | None = None):
    # boto3 loads with the first client, not on a cold start
    import boto3

    region = region or (settings.region if settings else None) or "us-east-1"
    # standard mode: exponential backoff with jitter on throttling, 4 attempts in all
    return boto3.client("sesv2", region_name=region,
                        config=Config(retries={"mode": "standard", "max_attempts": 4},
                                      connect_timeout=5, read_timeout=30))


class SesSender:
    kind = "ses"
    name = "ses"

    def __init__(self, client: Any, *, configuration_set: str = "") -> None:
        self.client = client
        self.configuration_set = configuration_set
        events = getattr(getattr(client, "meta", None), "events", None)
        if events is not None:
            # botocore retries a call whose answer never came (HTTPClientError): for SendEmail that
            # would send the message again. Raising here ends the call instead (first handler).
            events.register_first("needs-retry.sesv2.SendEmail", _no_retry_once_sent,
                                  unique_id="mailgate-ses-no-resend")

    def send(self, envelopes: list[Envelope], raw: bytes, *, smtputf8: bool = False,
             from_address: str = "") -> list[RecipientResult]:
        results = []
        for env in envelopes:
            args: dict[str, Any] = {
                "Destination": {"ToAddresses": [env.rcpt]},
                "Content": {"Raw": {"Data": raw}},
                "FeedbackForwardingEmailAddress": env.mail_from,
            }
            if from_address:
                args["FromEmailAddress"] = from_address
            if self.configuration_set:
                args["ConfigurationSetName"] = self.configuration_set
            try:
                out = self.client.send_email(**args)
            except ClientError as e:
                err = e.response.get("Error", {})
                code = err.get("Code", "")
                status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                transient = code in TRANSIENT_CODES or (status or 0) >= 500
                results.append(RecipientResult(
                    env.rcpt, "deferred" if transient else "failed", status,
                    f"SES refused the message: {code}: {err.get('Message', '')}".strip(),
                    "ses-throttled" if transient else "ses-rejected"))
                continue
            except (ReadTimeoutError, ConnectionClosedError) as e:
                results.append(RecipientResult(env.rcpt, "unknown", None, f"SES did not answer after the message "
                                               f"was sent ({e}); it may have been accepted: not sent again",
                                               "ses-no-answer"))
                continue
            except BotoCoreError as e:
                results.append(RecipientResult(env.rcpt, "deferred", None, f"SES could not be reached: {e}",
                                               "ses-unreachable"))
                continue
            results.append(RecipientResult(env.rcpt, "sent", 200, "accepted by SES",
                                           transport_id=out.get("MessageId", "")))
        return results

    def close(self) -> None:
        pass


def _no_retry_once_sent(caught_exception=None, **kwargs) -> None:
    """botocore's needs-retry hook: a SendEmail whose request went out but whose answer did not come
    back is not retried (it may have been accepted); one that never connected may be."""
    if isinstance(caught_exception, (ConnectTimeoutError, EndpointConnectionError)):
        return None  # never reached SES: botocore's retry is safe
    if isinstance(caught_exception, (ReadTimeoutError, ConnectionClosedError)):
        raise caught_exception
    return None
