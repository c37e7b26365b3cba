from mailgate.entrypoints.delivery import handler  # noqa: F401
