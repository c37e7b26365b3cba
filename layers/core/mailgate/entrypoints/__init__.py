"""Lambda handlers: decode the event, call one service function, return its result.

Powertools (structured logging with the Lambda context, metrics) lives here, not in the core.
functions/NAME/app.py re-exports `handler` from the module of the same name.
"""
