from mailgate.entrypoints.inbound import handler  # noqa: F401
