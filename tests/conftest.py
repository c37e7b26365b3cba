"""Shared test set-up.

Every module in tests/fixtures/ is a pytest plugin (servers on 127.0.0.1: the AWS emulator,
Dovecot, SMTP, DNS); they are loaded here so each capability can add its own without touching
this file.
"""

import pathlib

_fixtures = pathlib.Path(__file__).parent / "fixtures"
pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}" for p in _fixtures.glob("*.py") if not p.name.startswith("_")
)
