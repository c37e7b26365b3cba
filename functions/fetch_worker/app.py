from mailgate.entrypoints.fetch_worker import handler  # noqa: F401
