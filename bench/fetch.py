"""Benchmark: fetching one IMAP mailbox of N messages (~5 KB) from a private Dovecot.

    PYTHONPATH=$PWD/layers/core:$PWD/dev:$PWD .venv/bin/python bench/fetch.py [--messages 1000]

Runs, each on its own copy of the same mailbox (same bytes, all unread), over IMAPS:

  bare       one `UID FETCH 1:* BODY.PEEK[]`, bytes discarded: the floor for any client
  mailgate   fetch_mailbox(): batched UID FETCH, each raw message written to a local-disk store
             and fsynced before the batched `\\Seen` acknowledgement, a cursor and a lease
  getmail6   getmail 6 (`getmail --rcfile`) into a Maildir, read_all
  odoo-loop  Odoo's fetchmail loop: SEARCH UNSEEN, then per message one FETCH (RFC822) and two
             flag STOREs, each message written and fsynced to the same local-disk store
  s3-put     the AWS emulator's (moto server) own PUT rate for the same objects, no IMAP,
             one at a time and from 16 threads (mailgate stores a chunk with 16 threads)
  mailgate-s3 fetch_mailbox() into S3 on the emulator

getmail6 is installed into the venv for this benchmark only (pip install getmail6).
Prints a table and the ratios measured in this same run.
"""

from __future__ import annotations

import argparse
import imaplib
import os
import pathlib
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "layers" / "core"), str(REPO / "dev"), str(REPO)]

from mailgate.adapters.mailboxes import NetMailboxes  # noqa: E402
from mailgate.domain import IncomingServer, MessageRecord, server_secret_id  # noqa: E402
from mailgate.errors import NotFound  # noqa: E402
from mailgate.services import fetch  # noqa: E402
from mailgate_dev import fakes  # noqa: E402
from tests.fixtures import dovecot as dv  # noqa: E402
from tests.fixtures._ports import free_port, wait_listening  # noqa: E402

VENV_BIN = pathlib.Path(sys.executable).parent


def message(n: int, size: int = 5000) -> bytes:
    line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n"
    body = (line * (size // len(line) + 1))[: size - 300]
    return (f"From: Customer {n} <c{n}@example.org>\r\nTo: shop@example.net\r\n"
            f"Subject: order {n}\r\nMessage-ID: <bench-{n}@example.org>\r\n"
            f"Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}").encode()


class FsyncDirStore:
    """A RawMailStore on local disk: write to a temp name, fsync, rename, fsync the directory."""

    def __init__(self, root: pathlib.Path):
        self.root = root
        self.puts = 0

    def _path(self, key: str) -> pathlib.Path:
        return self.root / key.replace("/", "_")

    def put(self, key: str, data: bytes, *, content_type: str = "message/rfc822") -> None:
        path = self._path(key)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
        dfd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        self.puts += 1

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound(key) from None

    def exists(self, key: str) -> bool:
        return self._path(key).exists()


class S3Store:
    def __init__(self, client, bucket: str):
        self.client, self.bucket, self.puts = client, bucket, 0

    def put(self, key, data, *, content_type="message/rfc822"):
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        self.puts += 1

    def get(self, key):
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def exists(self, key):
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except self.client.exceptions.ClientError:
            return False


def light_ingest(c, raw_key, *, source, envelope_recipients, verdicts=None, deadline=None, raw=None):
    """Stands in for routing: one ledger record per message (the bench measures fetching)."""
    record = MessageRecord(key="raw:" + raw_key, raw_key=raw_key, source=source)
    c.messages.claim(record)
    return record


def mailbox_with(d: dv.Dovecot, n: int) -> str:
    user = d.add_user()
    for i in range(n):
        d.deliver(user, message(i))
    # Let Dovecot index the folder once, so every client pays the same (warm) cost.
    ctx = ssl.create_default_context(cafile=str(d.ca_pem))
    m = imaplib.IMAP4_SSL("127.0.0.1", d.imaps_port, ssl_context=ctx)
    m.login(user, "secret")
    m.select("INBOX", readonly=True)
    m.logout()
    return user


def run_bare(d, user, n) -> float:
    ctx = ssl.create_default_context(cafile=str(d.ca_pem))
    t = time.perf_counter()
    m = imaplib.IMAP4_SSL("127.0.0.1", d.imaps_port, ssl_context=ctx)
    m.login(user, "secret")
    m.select("INBOX", readonly=True)
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[])")
    got = sum(1 for e in data if isinstance(e, tuple))
    m.logout()
    elapsed = time.perf_counter() - t
    assert got == n, (got, n)
    return elapsed


def run_mailgate(d, user, n, store) -> float:
    c = fakes.in_memory(raw_store=store, mailboxes=NetMailboxes(cafile=str(d.ca_pem)))
    c.config.put_incoming(IncomingServer(name="bench", protocol="imap", host="127.0.0.1",
                                         port=d.imaps_port, user=user, ack="seen"))
    c.secrets.put(server_secret_id("mailgate/server/", "imap", "bench"), "secret")  # where the worker looks
    t = time.perf_counter()
    res = fetch.fetch_mailbox(c, "bench", deadline=time.monotonic() + 600, max_messages=n,
                              ingest=light_ingest)
    elapsed = time.perf_counter() - t
    assert res.status == "ok" and res.fetched == n and store.puts == n and res.failed == 0, res
    return elapsed


def run_odoo_loop(d, user, n, store) -> float:
    """Odoo's fetchmail.server.fetch_mail (IMAP): SEARCH UNSEEN; per message FETCH (RFC822),
    STORE -FLAGS \\Seen, process (here: store durably), STORE +FLAGS \\Seen."""
    ctx = ssl.create_default_context(cafile=str(d.ca_pem))
    t = time.perf_counter()
    m = imaplib.IMAP4_SSL("127.0.0.1", d.imaps_port, ssl_context=ctx)
    m.login(user, "secret")
    m.select()
    typ, data = m.search(None, "(UNSEEN)")
    count = 0
    for num in data[0].split():
        typ, msg = m.fetch(num, "(RFC822)")
        m.store(num, "-FLAGS", "\\Seen")
        raw = msg[0][1]
        store.put(f"raw/odoo/{user}-{int(num)}.eml", raw)
        m.store(num, "+FLAGS", "\\Seen")
        count += 1
    m.close()
    m.logout()
    elapsed = time.perf_counter() - t
    assert count == n, count
    return elapsed


def run_getmail(d, user, n, work: pathlib.Path) -> float:
    maildir = work / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    rc = work / "getmailrc"
    rc.write_text(f"""[retriever]
type = SimpleIMAPSSLRetriever
server = 127.0.0.1
port = {d.imaps_port}
username = {user}
password = secret
mailboxes = ("INBOX",)
ca_certs = {d.ca_pem}

[destination]
type = Maildir
path = {maildir}/

[options]
read_all = true
delete = false
verbose = 0
message_log_syslog = false
""")
    cmd = [str(VENV_BIN / "getmail"), "--rcfile", str(rc), "--getmaildir", str(work)]
    env = dict(os.environ)
    if os.getuid() == 0:
        # getmail refuses to deliver as root; run it as the unprivileged owner of the mailboxes,
        # with the system python (the venv's interpreter lives under /root, closed to others).
        import getmailcore

        lib = work / "lib"
        shutil.copytree(pathlib.Path(getmailcore.__file__).parent, lib / "getmailcore")
        for p in [work, *work.rglob("*")]:
            os.chown(p, d.uid, d.gid)
        os.chmod(work.parent, 0o755)
        env["PYTHONPATH"] = str(lib)
        cmd = ["setpriv", f"--reuid={d.uid}", f"--regid={d.gid}", "--clear-groups",
               "/usr/bin/python3", *cmd]
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    elapsed = time.perf_counter() - t
    got = len(list((maildir / "new").iterdir()))
    if out.returncode != 0 or got != n:
        raise RuntimeError(f"getmail failed ({got}/{n}): {out.stderr or out.stdout}")
    return elapsed


def run_s3_put(client, bucket, n) -> float:
    t = time.perf_counter()
    for i in range(n):
        client.put_object(Bucket=bucket, Key=f"put/{i}.eml", Body=message(i),
                          ContentType="message/rfc822")
    return time.perf_counter() - t


def run_s3_put_parallel(client, bucket, n, workers=16) -> float:
    from concurrent.futures import ThreadPoolExecutor

    def put(i):
        client.put_object(Bucket=bucket, Key=f"putp/{i}.eml", Body=message(i),
                          ContentType="message/rfc822")

    t = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(put, range(n)))
    return time.perf_counter() - t


def start_moto():
    port = free_port()
    proc = subprocess.Popen([str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(port)
    import boto3

    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    client.create_bucket(Bucket="bench")
    return proc, client


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--skip-s3", action="store_true")
    args = ap.parse_args()
    n = args.messages
    root = pathlib.Path(tempfile.mkdtemp(prefix="mailgate-bench-"))
    os.chmod(root, 0o755)
    d, pid = dv._start(root)
    work = pathlib.Path(tempfile.mkdtemp(prefix="mailgate-bench-store-"))
    moto = None
    try:
        rows = []
        rows.append(("bare UID FETCH 1:* (no store)", run_bare(d, mailbox_with(d, n), n)))
        store_dir = work / "mailgate"
        store_dir.mkdir()
        rows.append(("mailgate fetch -> local disk, fsync", run_mailgate(d, mailbox_with(d, n), n,
                                                                         FsyncDirStore(store_dir))))
        gm = work / "getmail"
        gm.mkdir()
        getmail_user = mailbox_with(d, n)
        rows.append(("getmail6 -> Maildir", run_getmail(d, getmail_user, n, gm)))
        odoo_dir = work / "odoo"
        odoo_dir.mkdir()
        rows.append(("odoo loop -> local disk, fsync", run_odoo_loop(d, mailbox_with(d, n), n,
                                                                     FsyncDirStore(odoo_dir))))
        if not args.skip_s3:
            moto, client = start_moto()
            rows.append(("emulator S3 PUT alone (no IMAP)", run_s3_put(client, "bench", n)))
            rows.append(("emulator S3 PUT alone, 16 threads", run_s3_put_parallel(client, "bench", n)))
            rows.append(("mailgate fetch -> S3 on emulator", run_mailgate(d, mailbox_with(d, n), n,
                                                                          S3Store(client, "bench"))))
        t = dict(rows)
        print(f"\n{n} messages of ~5 KB, Dovecot {dv.DOVECOT} over IMAPS on 127.0.0.1\n")
        print(f"{'run':40} {'seconds':>9} {'msg/s':>9}")
        for name, secs in rows:
            print(f"{name:40} {secs:9.3f} {n / secs:9.0f}")
        ours = t["mailgate fetch -> local disk, fsync"]
        print("\nratios (higher is better for mailgate):")
        print(f"  mailgate vs getmail6        {t['getmail6 -> Maildir'] / ours:6.1f}x   (goal >= 10x)")
        print(f"  mailgate vs odoo loop       {t['odoo loop -> local disk, fsync'] / ours:6.1f}x   (goal >= 4x)")
        print(f"  bare fetch vs mailgate      {ours / t['bare UID FETCH 1:* (no store)']:6.1f}x   "
              "(the gap to a bare batched fetch: storing, fsync, ack, cursor)")
        if not args.skip_s3:
            s3 = t["mailgate fetch -> S3 on emulator"]
            put = t["emulator S3 PUT alone (no IMAP)"]
            putp = t["emulator S3 PUT alone, 16 threads"]
            print(f"  mailgate->S3 vs S3 PUT alone {put / s3:5.2f}x   (sequential PUTs; 1.0 = fetching "
                  "costs nothing beyond the emulator's PUTs)")
            print(f"  mailgate->S3 vs 16-thread PUT {putp / s3:4.2f}x   (the emulator's best PUT rate; "
                  "1.0 = fetching adds nothing to it)")
        return 0
    finally:
        if moto is not None:
            moto.terminate()
            moto.wait(10)
        dv._stop(pid)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
