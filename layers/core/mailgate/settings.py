"""Configuration read once, at cold start, from environment variables.

The names are constants here so that template.yaml, the local stack and the tests use the same
spelling. A missing required value fails loudly in `Settings.from_env`, not on the first mail.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .errors import ConfigError

# Environment variable names (template.yaml sets them on every function through Globals).
TABLE_NAME = "MAILGATE_TABLE"
BUCKET_NAME = "MAILGATE_BUCKET"
EVENT_BUS_NAME = "MAILGATE_EVENT_BUS"
OUTBOUND_QUEUE_URL = "MAILGATE_OUTBOUND_QUEUE_URL"
FETCH_QUEUE_URL = "MAILGATE_FETCH_QUEUE_URL"
GATEWAY_DOMAIN = "MAILGATE_GATEWAY_DOMAIN"
CATCHALL_ALIAS = "MAILGATE_CATCHALL_ALIAS"
BOUNCE_ALIAS = "MAILGATE_BOUNCE_ALIAS"
TOKEN_SECRET_ID = "MAILGATE_TOKEN_SECRET_ID"
DKIM_SECRET_PREFIX = "MAILGATE_DKIM_SECRET_PREFIX"
SERVER_SECRET_PREFIX = "MAILGATE_SERVER_SECRET_PREFIX"
SES_CONFIGURATION_SET = "MAILGATE_SES_CONFIGURATION_SET"
# The SNS topic SES publishes bounces and complaints to: the feedback function takes no other.
FEEDBACK_TOPIC_ARN = "MAILGATE_FEEDBACK_TOPIC_ARN"
# Where the SES receipt rule's S3 action stores raw mail (its ObjectKeyPrefix).
SES_RAW_PREFIX = "MAILGATE_SES_RAW_PREFIX"
# Delivery to the application's targets (Odoo, webhooks): the work queue, and where the Odoo
# API keys and webhook signing secrets live in Secrets Manager.
DELIVERY_QUEUE_URL = "MAILGATE_DELIVERY_QUEUE_URL"
TARGET_SECRET_PREFIX = "MAILGATE_TARGET_SECRET_PREFIX"
# Seconds before the first retry of a delivery (doubling per attempt, at most 12 h).
DELIVERY_FIRST_RETRY = "MAILGATE_DELIVERY_FIRST_RETRY"
# Standard AWS SDK variable: boto3 sends every call there when set (the local stack sets it).
AWS_ENDPOINT_URL = "AWS_ENDPOINT_URL"


@dataclass(frozen=True)
class Settings:
    table_name: str
    bucket_name: str
    event_bus_name: str = "default"
    outbound_queue_url: str = ""
    fetch_queue_url: str = ""
    gateway_domain: str = ""
    catchall_alias: str = "catchall"
    bounce_alias: str = "bounce"
    token_secret_id: str = "mailgate/reply-token-key"
    dkim_secret_prefix: str = "mailgate/dkim/"
    server_secret_prefix: str = "mailgate/server/"
    ses_configuration_set: str = ""
    feedback_topic_arn: str = ""
    ses_raw_prefix: str = "raw/ses/"
    delivery_queue_url: str = ""
    target_secret_prefix: str = "mailgate/target/"
    delivery_first_retry: int = 60
    endpoint_url: str | None = None
    region: str = field(default="us-east-1")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        missing = [name for name in (TABLE_NAME, BUCKET_NAME) if not env.get(name)]
        if missing:
            raise ConfigError(
                f"missing environment variable(s) {', '.join(missing)}: "
                "set them (template.yaml does for deployed functions; `mailgate dev` does locally)"
            )
        return cls(
            table_name=env[TABLE_NAME],
            bucket_name=env[BUCKET_NAME],
            event_bus_name=env.get(EVENT_BUS_NAME) or "default",
            outbound_queue_url=env.get(OUTBOUND_QUEUE_URL, ""),
            fetch_queue_url=env.get(FETCH_QUEUE_URL, ""),
            gateway_domain=env.get(GATEWAY_DOMAIN, ""),
            catchall_alias=env.get(CATCHALL_ALIAS) or "catchall",
            bounce_alias=env.get(BOUNCE_ALIAS) or "bounce",
            token_secret_id=env.get(TOKEN_SECRET_ID) or "mailgate/reply-token-key",
            dkim_secret_prefix=env.get(DKIM_SECRET_PREFIX) or "mailgate/dkim/",
            server_secret_prefix=env.get(SERVER_SECRET_PREFIX) or "mailgate/server/",
            ses_configuration_set=env.get(SES_CONFIGURATION_SET, ""),
            feedback_topic_arn=env.get(FEEDBACK_TOPIC_ARN, ""),
            ses_raw_prefix=env.get(SES_RAW_PREFIX) or "raw/ses/",
            delivery_queue_url=env.get(DELIVERY_QUEUE_URL, ""),
            target_secret_prefix=env.get(TARGET_SECRET_PREFIX) or "mailgate/target/",
            delivery_first_retry=_seconds(env, DELIVERY_FIRST_RETRY, 60),
            endpoint_url=env.get(AWS_ENDPOINT_URL) or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        )


def _seconds(env, name: str, default: int) -> int:
    value = env.get(name)
    if not value:
        return default
    try:
        return max(1, int(value))
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a whole number of seconds") from None
