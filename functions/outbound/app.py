from mailgate.entrypoints.outbound import handler  # noqa: F401
