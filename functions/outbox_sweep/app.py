from mailgate.entrypoints.outbox_sweep import handler  # noqa: F401
