"""The `mailgate` command (`main.py`), one module per area of the gateway.

Every invocation builds the whole parser, importing each command module; so a command module
imports the services, the local stack and the AWS SDK inside the handler that needs them, and
`mailgate --help` or a bad usage answers at once.
"""
