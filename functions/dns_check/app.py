from mailgate.entrypoints.dns_check import handler  # noqa: F401
