from mailgate.entrypoints.fetch_dispatcher import handler  # noqa: F401
