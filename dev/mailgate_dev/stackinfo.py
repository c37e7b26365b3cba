"""What a mailgate stack tells about itself, shared by the local stack (which writes it) and the
`mailgate` command (which reads it).

The local stack writes `STATE_FILE` in its state directory when it starts; a deployed stack's
outputs are read from CloudFormation. The template's Outputs have the same names in both.
"""

from __future__ import annotations

from mailgate.errors import ConfigError
from mailgate.settings import Settings

#: written by the local stack into its state directory: endpoint, CA bundle and the template's outputs
STATE_FILE = "stack.json"


def settings_from_outputs(outputs: dict[str, str], *, region: str, endpoint: str | None,
                          gateway_domain: str = "") -> Settings:
    """Settings from the template's Outputs (the same names for local and deployed stacks)."""
    need = ("TableName", "BucketName")
    missing = [k for k in need if not outputs.get(k)]
    if missing:
        raise ConfigError(f"the stack has no output {', '.join(missing)}: is it a mailgate stack?")
    return Settings(
        table_name=outputs["TableName"], bucket_name=outputs["BucketName"],
        event_bus_name=outputs.get("EventBusName") or "default",
        outbound_queue_url=outputs.get("OutboundQueueUrl", ""),
        fetch_queue_url=outputs.get("FetchQueueUrl", ""),
        gateway_domain=outputs.get("GatewayDomain", gateway_domain),
        catchall_alias=outputs.get("CatchallAlias", "catchall"),
        bounce_alias=outputs.get("BounceAlias", "bounce"),
        token_secret_id=outputs.get("TokenSecretId", "mailgate/reply-token-key"),
        dkim_secret_prefix=outputs.get("DkimSecretPrefix", "mailgate/dkim/"),
        server_secret_prefix=outputs.get("ServerSecretPrefix", "mailgate/server/"),
        ses_configuration_set=outputs.get("ConfigurationSetName", ""),
        feedback_topic_arn=outputs.get("FeedbackTopicArn", ""),
        delivery_queue_url=outputs.get("DeliveryQueueUrl", ""),
        target_secret_prefix=outputs.get("TargetSecretPrefix", "mailgate/target/"),
        endpoint_url=endpoint, region=region,
    )
