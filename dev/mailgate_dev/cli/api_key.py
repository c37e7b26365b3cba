"""`mailgate api-key add APP | list | remove APP`: per-application API keys of the HTTP API.

Each application gets its own key in the stack's usage plan (its limits apply per key); the key
value is printed once. A request needs the key and a SigV4 signature (docs/delivery.md).
"""

from __future__ import annotations

import re

from mailgate.errors import ConfigError
from . import common
from .stack import local_settings, local_state

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PREFIX = "mailgate-"


def register(sub) -> None:
    p = sub.add_parser("api-key", help="API keys of the HTTP API, one per application")
    s = p.add_subparsers(dest="api_key_command", metavar="ACTION")
    add = s.add_parser("add", help="make a key for an application (printed once)")
    add.add_argument("app", help="the application's name, e.g. erp")
    common.add_json_flag(add)
    add.set_defaults(func=cmd_add)
    ls = s.add_parser("list", help="the applications with a key")
    common.add_json_flag(ls)
    ls.set_defaults(func=cmd_list)
    rm = s.add_parser("remove", help="revoke an application's key")
    rm.add_argument("app")
    rm.set_defaults(func=cmd_remove)


def _plan(args) -> tuple[object, str]:
    """The API Gateway client and the usage plan of the stack the command targets."""
    import boto3

    if getattr(args, "stack", None):
        session = boto3.Session(profile_name=args.profile, region_name=args.region)
        outputs = {o["OutputKey"]: o["OutputValue"] for o in session.client("cloudformation").describe_stacks(
            StackName=args.stack)["Stacks"][0].get("Outputs", [])}
        client = session.client("apigateway")
    else:
        state = local_state()
        settings = local_settings(state)
        outputs = state["outputs"]
        client = boto3.client("apigateway", endpoint_url=settings.endpoint_url, region_name=settings.region)
    plan = outputs.get("ApiUsagePlanId")
    if not plan:
        raise ConfigError("the stack has no ApiUsagePlanId output: deploy the current template.yaml")
    return client, plan


def _keys(client, plan: str) -> list[dict]:
    return [k for k in client.get_usage_plan_keys(usagePlanId=plan).get("items", []) if k.get("name", "").startswith(PREFIX)]


def cmd_add(args) -> int:
    if not _NAME.match(args.app):
        raise common.UsageError(f"{args.app!r}: use up to 64 letters, digits, '.', '_' or '-'")
    client, plan = _plan(args)
    if any(k["name"] == PREFIX + args.app for k in _keys(client, plan)):
        return common.fail(f"{args.app} has a key already: `mailgate api-key remove {args.app}` first to replace it")
    key = client.create_api_key(name=PREFIX + args.app, enabled=True, description=f"mailgate HTTP API: {args.app}")
    client.create_usage_plan_key(usagePlanId=plan, keyId=key["id"], keyType="API_KEY")
    common.emit(args, {"app": args.app, "id": key["id"], "value": key["value"]},
                f"API key for {args.app} (shown once; send it as x-api-key): {key['value']}")
    return common.EXIT_OK


def cmd_list(args) -> int:
    client, plan = _plan(args)
    rows = [{"app": k["name"][len(PREFIX):], "id": k["id"]} for k in _keys(client, plan)]
    common.emit(args, rows, common.table(rows, ["app", "id"]))
    return common.EXIT_OK


def cmd_remove(args) -> int:
    client, plan = _plan(args)
    found = [k for k in _keys(client, plan) if k["name"] == PREFIX + args.app]
    if not found:
        return common.fail(f"{args.app} has no key")
    for k in found:
        client.delete_usage_plan_key(usagePlanId=plan, keyId=k["id"])
        client.delete_api_key(apiKey=k["id"])
    print(common.safe(f"revoked the API key of {args.app}"))
    return common.EXIT_OK
