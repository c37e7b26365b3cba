"""Where a mailbox was left: the cursor item, per protocol.

IMAP: UIDVALIDITY + the last UID taken (RFC 3501 2.3.1.1). POP3: the UIDLs taken (RFC 1939
section 7), inline in the item or, beyond SEEN_INLINE_BYTES, in the raw store. Each cursor lists
what is pending, marks the chunk being stored (`begin`: after a crash only those messages may
already be in the store, and a chunk left open means the last run died in it) and advances past
what is done (`save`).

Besides what is done, `save` takes what was skipped (left on the server, never fetched again:
too large, or not returned run after run) and what was missed (listed, but the server did not
return it: `-ERR [SYS/TEMP]` on RETR, a UID left out of a UID FETCH answer). A missed message is
fetched again next run and its attempts are counted in `retry`; the cursor never passes it
silently. On POP3, nothing skipped or missed is ever deleted: only what was stored is "seen".
"""

from __future__ import annotations

import json
import logging

from ...domain import IncomingServer
from ...errors import NotFound, TransientError
from ...ports import MailItem
from .health import FetchResult
from .state import CURSOR_PREFIX, SKIPPED_PREFIX

log = logging.getLogger(__name__)

#: a POP3 cursor keeps the UIDLs it has taken inline up to this size (JSON bytes); beyond, in
#: the raw store: a mailbox that keeps its mail (ack seen/leave) would outgrow a DynamoDB item
#: (400 KB) after some thousand messages, as RFC 1939 allows UIDLs of up to 70 characters
SEEN_INLINE_BYTES = 64 * 1024
SEEN_STATE_PREFIX = "state/fetch/"


def account_of(server: IncomingServer) -> str:
    """The mailbox a cursor belongs to. UIDs and UIDLs mean something on that mailbox only, and
    UIDVALIDITY is unique per folder name on one server, not across accounts (RFC 3501 2.3.1.1):
    a server item pointed at another account (re-added under the same name) starts afresh."""
    return f"{server.user}@{server.host.strip().lower()}"


class CursorItem:
    """The mailbox cursor item, written with a version check (a lost lease cannot go unnoticed)."""

    def __init__(self, c, server, now):
        self.c, self.server, self.now = c, server, now
        self.key = CURSOR_PREFIX + server.name
        self.value = c.kv.get_item(self.key) or {}
        self.version = int(self.value.get("version") or 0)

    def write(self, **fields) -> None:
        value = {k: v for k, v in self.value.items() if k != "version"}
        value.update(fields, version=self.version + 1, updated_at=self.now())
        if not self.c.kv.put_item(self.key, value, if_version=self.version):
            raise TransientError(f"cursor of {self.server.name} was changed by another worker "
                                 "(lease expired?); stopping", code="lease-lost")
        self.value, self.version = value, self.version + 1


class _Attempts:
    """What ImapCursor and PopCursor share: the open-chunk mark and the messages to fetch again.

    `retry` maps a message's ident to [fetches that did not return it, its size]."""

    item: CursorItem
    retry: dict[str, list[int]]
    crashed: bool

    def attempts(self, item: MailItem) -> int:
        """How many earlier fetches listed `item` and did not return it."""
        return int((self.retry.get(item.ident) or [0])[0])

    def careful(self, item: MailItem) -> bool:
        """The last run died with `item` in its open chunk (it may have died routing it)."""
        return self.crashed and self.may_exist(item)

    def may_exist(self, item: MailItem) -> bool:
        raise NotImplementedError

    def _retry_after(self, done: list[MailItem], skipped: list[MailItem], missed: list[MailItem]
                     ) -> dict[str, list[int]]:
        retry = {k: v for k, v in self.retry.items() if k not in {i.ident for i in (*done, *skipped)}}
        for i in missed:
            retry[i.ident] = [self.attempts(i) + 1, i.size]
        return retry


class ImapCursor(_Attempts):
    """UIDVALIDITY, folder and account unchanged: what is above the last UID is new, and the UIDs
    in `retry` are fetched again. Otherwise the whole folder is read again (and may already be in
    the store, under its old UIDs)."""

    def __init__(self, c, server, mb, res: FetchResult, now) -> None:
        self.item = cursor = CursorItem(c, server, now)
        cur = cursor.value
        self.last_uid = int(cur.get("last_uid") or 0)
        self.inflight = int(cur.get("inflight_upto") or 0)
        self.crashed = bool(cur.get("chunk_open"))
        self.retry = dict(cur.get("retry") or {})
        reset_upto = int(cur.get("reset_upto") or 0)
        folder = server.folder or "INBOX"
        account = account_of(server)
        reset = bool(cur) and (int(cur.get("uidvalidity") or 0) != mb.uidvalidity
                               or cur.get("folder", folder) != folder or cur.get("account", account) != account)
        if reset:
            # RFC 3501 2.3.1.1: a new UIDVALIDITY means old UIDs mean nothing; take everything again.
            # Content-addressed storage and ingest's dedup make the second pass store nothing twice.
            res.uidvalidity_reset = True
            res.notes.append(f"UIDVALIDITY changed ({cur.get('uidvalidity')} -> {mb.uidvalidity}), folder "
                             f"changed or another account: re-reading {folder} from the start")
            self.last_uid, self.inflight, self.crashed, self.retry = 0, 0, False, {}
        listed = mb.list_since(self.last_uid)
        if reset:
            # Everything up to here may be in the store already (under its old UID).
            reset_upto = max((i.ref for i in listed), default=0)
        # A UID missed earlier is at or below last_uid: fetched again by UID, with its listed size.
        again = [MailItem(int(k), k, int(v[1])) for k, v in self.retry.items() if int(k) <= self.last_uid]
        self.pending: list[MailItem] = sorted(again, key=lambda i: i.ref) + listed
        self.reset_upto = reset_upto
        self.base = {"protocol": "imap", "folder": folder, "uidvalidity": mb.uidvalidity, "account": account,
                     "reset_upto": reset_upto}

    def begin(self, chunk: list[MailItem]) -> None:
        self.item.write(**self.base, last_uid=self.last_uid, retry=self.retry, chunk_open=True,
                        inflight_upto=max(self.inflight, max(i.ref for i in chunk)))

    def save(self, done: list[MailItem], skipped: list[MailItem] = (), missed: list[MailItem] = ()) -> None:
        """Past everything handled (a missed UID is remembered in `retry`, so passing it loses nothing)."""
        handled = [*done, *skipped, *missed]
        if handled:
            self.last_uid = max(self.last_uid, max(i.ref for i in handled))
            self.retry = self._retry_after(list(done), list(skipped), list(missed))
            self.item.write(**self.base, last_uid=self.last_uid, retry=self.retry, chunk_open=False)

    def may_exist(self, item: MailItem) -> bool:
        return item.ref <= self.inflight or item.ref <= self.reset_upto


class PopCursor(_Attempts):
    """What the maildrop lists minus the UIDLs already taken (`seen`) or left there for good
    (`skipped`) is new; with ack "delete", messages taken by a run that died before QUIT are
    deleted again (the server rolled that back). A UIDL the list no longer has is gone: the only
    proof of absence POP3 gives (RFC 1939 section 7)."""

    def __init__(self, c, server, mb, res: FetchResult, now) -> None:
        self.c, self.server = c, server
        self.item = cursor = CursorItem(c, server, now)
        self.account = account = account_of(server)
        value = cursor.value
        if value.get("account", account) != account:
            # Another mailbox: its UIDLs may equal the old one's (Dovecot's are UID + UIDVALIDITY), and
            # "seen" must never delete (ack delete) or skip a message this mailbox has not given us.
            res.notes.append(f"the server now names another account ({account}): reading it from the start")
            seen, self.inflight, skipped, retry, self.crashed = set(), set(), set(), {}, False
        else:
            seen = _load_seen(c, server, value)
            self.inflight = set(value.get("inflight") or [])
            skipped, retry = set(value.get("skipped") or []), dict(value.get("retry") or {})
            self.crashed = bool(value.get("chunk_open"))
        everything = mb.list_all()
        present = {i.ident for i in everything}
        if server.ack == "delete":
            # Deletions of a run that died before QUIT were rolled back by the server: redo them.
            # Only "seen" ones: their raw bytes are stored. Skipped ones stay on the server.
            again = [i for i in everything if i.ident in seen]
            if again:
                skipped |= _recorded_skips(c, server, seen)
                again = [i for i in again if i.ident not in skipped]
                seen -= skipped
            if again:
                mb.ack(again, "delete")
                res.notes.append(f"re-deleted {len(again)} message(s) already stored")
        self.seen = seen & present
        self.skipped = skipped & present
        self.retry = {k: v for k, v in retry.items() if k in present}
        self.pending: list[MailItem] = [i for i in everything if i.ident not in seen and i.ident not in skipped]

    def _fields(self, **more) -> dict:
        return {"protocol": "pop", "account": self.account, **_seen_fields(self.c, self.server, self.seen),
                "skipped": sorted(self.skipped), "retry": self.retry, **more}

    def begin(self, chunk: list[MailItem]) -> None:
        self.item.write(**self._fields(chunk_open=True), inflight=[i.ident for i in chunk])

    def save(self, done: list[MailItem], skipped: list[MailItem] = (), missed: list[MailItem] = ()) -> None:
        if done or skipped or missed:
            self.seen |= {i.ident for i in done}
            self.skipped |= {i.ident for i in skipped}
            self.retry = self._retry_after(list(done), list(skipped), list(missed))
            self.item.write(**self._fields(chunk_open=False))

    def may_exist(self, item: MailItem) -> bool:
        return item.ident in self.inflight


def _recorded_skips(c, server, seen: set[str]) -> set[str]:
    """UIDLs among `seen` that have a skip record: a cursor of the earlier layout kept messages
    over the size cap among those taken, and they must not be deleted (one query, only when a
    run finds taken messages still on the server)."""
    prefix = f"{SKIPPED_PREFIX}{server.name}#"
    return {key[len(prefix):] for key, _ in c.kv.scan_prefix(prefix)} & seen


def _load_seen(c, server, value: dict) -> set[str]:
    key = value.get("seen_key")
    if not key:
        return set(value.get("seen") or [])
    try:
        return set(json.loads(c.raw_store.get(key)))
    except NotFound:
        # Re-reading the mailbox is safe (content-addressed store, ingest's dedup), only slower.
        log.warning("fetch %s: the list of messages taken (%s) is missing; re-reading the mailbox",
                    server.name, key)
        return set()


def _seen_fields(c, server, seen: set[str]) -> dict:
    ordered = sorted(seen)
    if len(json.dumps(ordered)) <= SEEN_INLINE_BYTES:
        return {"seen": ordered, "seen_key": None, "seen_count": len(ordered)}
    # One object per server, overwritten: whatever a (late) worker writes there lists only
    # messages it has stored and routed, so at worst a message is read again, never lost.
    key = f"{SEEN_STATE_PREFIX}{server.name}/pop-seen.json"
    c.raw_store.put(key, json.dumps(ordered).encode(), content_type="application/json")
    return {"seen": [], "seen_key": key, "seen_count": len(ordered)}
