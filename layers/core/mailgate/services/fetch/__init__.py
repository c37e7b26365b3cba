"""Scheduled fetching of incoming servers (Odoo's "Mail: Fetchmail Service"), exactly once.

    EventBridge schedule -> dispatch()         one SQS message (a job) per due mailbox  (dispatch.py)
    SQS                  -> run_job()          -> fetch_mailbox(), per job             (worker.py)

fetch_mailbox() holds a lease on the mailbox (one worker at a time: lease.py), reads what is new
since its cursor (IMAP: UIDVALIDITY + last UID; POP3: the UIDLs already taken: cursor.py), in
chunks of one round trip each, and for every message:

    1. stores the raw bytes under a content-addressed key (raw/fetch/<sha256>.eml),
    2. hands the key to ingest() (dedup by Message-ID/digest, routing, outcome),
    3. and only then acknowledges the chunk on the server (leave / \\Seen / move / delete)
       and advances the cursor.

A crash at any point repeats at most steps 1-3 for the messages of one chunk: the store is
content-addressed and ingest() is idempotent, so nothing is lost and nothing is stored twice.
A message whose routing fails, or never finishes, is kept with its error (a "fetch-failed:"
record, poison.py) and does not block the mailbox. A message the server lists but does not return
(RETR answered -ERR, a UID left out of the UID FETCH answer) is neither acknowledged nor passed:
it is fetched again, and after some runs recorded as skipped and left on the server, never
silently. Unread state is never the cursor, so mail a person already read is fetched.
Each run's result goes into the server's health (health.py), which disables a server failing
for days; connection.py holds the server's password and Odoo's Test Connection.
"""

from .connection import secret_id_for, test_connection
from .dispatch import dispatch, servers_disabled
from .health import FetchResult, health, reset_failures
from .state import forget, skipped
from .worker import fetch_mailbox, run_job

__all__ = ["FetchResult", "dispatch", "fetch_mailbox", "forget", "health",
           "reset_failures", "run_job", "secret_id_for", "servers_disabled", "skipped", "test_connection"]
