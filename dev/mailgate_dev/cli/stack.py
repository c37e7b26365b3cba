"""Which stack a command talks to: the local one (default) or a deployed one (--stack).

The local stack writes `.local/stack.json` (endpoint and the template's outputs) when it starts;
a deployed stack's outputs are read from CloudFormation. Both become the same `Settings`.
"""

from __future__ import annotations

import json
import os
import pathlib

from mailgate import bootstrap
from mailgate.adapters.mailboxes import NetMailboxes
from mailgate.errors import ConfigError
from mailgate.settings import Settings

from ..stackinfo import STATE_FILE, settings_from_outputs

STATE_DIR = pathlib.Path(os.environ.get("MAILGATE_LOCAL_DIR", ".local"))


def state_path() -> pathlib.Path:
    return pathlib.Path(os.environ.get("MAILGATE_LOCAL_DIR", str(STATE_DIR))) / STATE_FILE


def local_state() -> dict:
    path = state_path()
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError("the local stack is not running: start it with `make run` (or `mailgate dev`) "
                          "in another terminal, or name a deployed stack with --stack NAME") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is unreadable ({exc}); restart the local stack") from None
    return state


def local_settings(state: dict | None = None) -> Settings:
    state = state if state is not None else local_state()
    # The local stack's credentials are the emulator's; never send real ones there.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ["AWS_ENDPOINT_URL"] = state["endpoint"]
    if state.get("ca_bundle"):
        os.environ["AWS_CA_BUNDLE"] = state["ca_bundle"]  # the local stack's own CA
    _check_reachable(state["endpoint"])
    return settings_from_outputs(state["outputs"], region=state.get("region", "us-east-1"),
                                 endpoint=state["endpoint"])


def _check_reachable(endpoint: str) -> None:
    import socket
    from urllib.parse import urlparse

    u = urlparse(endpoint)
    try:
        socket.create_connection((u.hostname, u.port or 80), timeout=2).close()
    except OSError:
        raise ConfigError(f"the local stack at {endpoint} does not answer: start it with `make run` "
                          "(or `mailgate dev`)") from None


def deployed_settings(stack: str, profile: str | None, region: str | None) -> Settings:
    outputs, region = deployed_outputs(stack, profile, region)
    return settings_from_outputs(outputs, region=region, endpoint=None)


def deployed_outputs(stack: str, profile: str | None, region: str | None) -> tuple[dict[str, str], str]:
    """The stack's outputs and its region, read from CloudFormation."""
    outputs, _, region = deployed_stack(stack, profile, region)
    return outputs, region


def deployed_stack(stack: str, profile: str | None, region: str | None) -> tuple[dict[str, str], dict[str, str], str]:
    """The stack's outputs, its parameters and its region, read from CloudFormation."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

    try:
        session = boto3.Session(profile_name=profile, region_name=region)
        cfn = session.client("cloudformation")
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    except ProfileNotFound:
        raise ConfigError(f"AWS profile {profile!r} does not exist: see `aws configure list-profiles`") from None
    except ClientError as exc:
        raise ConfigError(f"cannot read stack {stack!r}: {exc.response['Error'].get('Message', exc)}") from None
    except BotoCoreError as exc:
        raise ConfigError(f"cannot reach AWS for stack {stack!r}: {exc}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])}
    if profile:
        os.environ["AWS_PROFILE"] = profile
    return outputs, parameters, session.region_name or "us-east-1"


def settings_for_args(args) -> Settings:
    if getattr(args, "stack", None):
        return deployed_settings(args.stack, getattr(args, "profile", None), getattr(args, "region", None))
    return local_settings()


def container_for_args(args):
    if getattr(args, "stack", None):
        return bootstrap.from_settings(settings_for_args(args))
    state = local_state()
    # the local Dovecot's own CA, when the local stack runs one
    return bootstrap.from_settings(local_settings(state), mailboxes=NetMailboxes(cafile=state.get("fetch_cafile")))


def admin_for_args(args, c):
    """The operator's ports (queue depths, alarms, SES set-up) for the target stack, over the
    container's AWS clients, with the stack's outputs (queue URLs, alarm topic, rule set...) and,
    for a deployed stack, its parameters."""
    from ..admin import aws as admin_aws
    from ..admin.ports import AdminPorts

    clients = getattr(c.raw_store, "clients", None)
    if clients is None:
        raise ConfigError("this command's stack has no AWS clients (an in-memory container)")
    if getattr(args, "stack", None):
        outputs, parameters, _ = deployed_stack(args.stack, getattr(args, "profile", None), getattr(args, "region", None))
        local = False
    else:
        outputs, parameters, local = dict(local_state()["outputs"]), {}, True
    return AdminPorts(queues=admin_aws.SqsQueueStats(clients),
                      alarms=None if local else admin_aws.CloudWatchAlarms(clients),
                      ses=admin_aws.Sesv2Admin(clients), outputs=outputs, parameters=parameters, local=local)
