"""The `mailgate` command.

Each area of the gateway adds its sub-commands from a module of this package exposing
`register(subparsers)`; handlers return the exit status (0 ok, 1 a check failed, 2 bad usage).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from mailgate.errors import InvalidInput, MailgateError

from .common import EXIT_FAILED, EXIT_USAGE, UsageError, safe

# Command modules, in the order `mailgate --help` lists them. A module that is not there (a
# capability not installed) is left out rather than breaking the command.
AREAS = ("dev", "demo", "status", "setup", "domain", "alias", "server", "target", "deliveries", "api_key",
         "inspect", "route", "messages", "fetch", "send", "dkim", "dns", "suppression", "token")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one clear line, exit 2 (argparse's default prints usage too)
        self.exit(EXIT_USAGE, f"mailgate: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mailgate", description="A serverless mail gateway for business applications.")
    target = parser.add_argument_group("which stack (default: the local stack started by `mailgate dev`)")
    target.add_argument("--stack", metavar="NAME", help="a deployed CloudFormation stack name")
    target.add_argument("--profile", help="AWS profile for a deployed stack")
    target.add_argument("--region", help="AWS region for a deployed stack")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for area in AREAS:
        try:
            module = importlib.import_module(f"mailgate_dev.cli.{area}")
        except ModuleNotFoundError as exc:
            if exc.name == f"mailgate_dev.cli.{area}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or bad usage already explained on stderr
        return int(exc.code or 0)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except (UsageError, InvalidInput) as exc:  # InvalidInput: a name that mailgate.validate refused
        print(f"mailgate: {safe(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except MailgateError as exc:  # its reason may quote a message or a server's reply
        print(f"mailgate: {safe(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `mailgate ... | head`: the reader left; say nothing more
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0



if __name__ == "__main__":
    sys.exit(main())
