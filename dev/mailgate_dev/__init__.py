"""Development package: the `mailgate` command, the local stack and the in-memory fakes.

Installed by `pip install -e '.[dev]'`; never shipped in the Lambda layer, and never imported by it.
"""
