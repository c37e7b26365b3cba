from mailgate.entrypoints.feedback import handler  # noqa: F401
