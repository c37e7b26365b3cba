"""mailgate: a serverless mail gateway for business applications."""

__version__ = "0.1.0"
