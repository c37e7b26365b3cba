from mailgate.entrypoints.api import handler  # noqa: F401
