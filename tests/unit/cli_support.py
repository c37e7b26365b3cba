"""Running `mailgate` sub-commands in-process, against a given container, as a user would."""

from __future__ import annotations

import argparse

from mailgate_dev.cli import common


def run_cli(argv, capsys, modules, *, container=None, monkeypatch=None) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `mailgate ARGV` with only `modules` registered; the
    commands reach `container` (a stack of fakes) when one is given."""
    parser = argparse.ArgumentParser(prog="mailgate")
    sub = parser.add_subparsers(dest="area")
    for module in modules:
        module.register(sub)
    if container is not None:
        monkeypatch.setattr(common, "get_container", lambda args: container)
    args = parser.parse_args(list(argv))
    code = args.func(args)
    out = capsys.readouterr()
    return code, out.out, out.err
