"""A private Dovecot (IMAP + POP3) on 127.0.0.1, for the fetch tests, the demo and `mailgate dev --imap`.

One master process with its own configuration under `state_dir` (nothing shared with
/etc/dovecot), listening on free loopback ports for IMAP (STARTTLS), IMAPS, POP3 (STLS) and
POP3S. Its certificate comes from the project's local CA (mailgate_dev.local.tls.make_ca), so clients
verify TLS against `ca_file` exactly as they would against a real server.

    server = DovecotServer(pathlib.Path("/tmp/dv")).start()
    user = server.add_user("demo", "demo-password")
    server.deliver(user, raw_bytes)
    ... IMAPS on server.host:server.imaps_port, trusting server.ca_file ...
    server.stop()

Messages are delivered by writing Maildir files directly (fast enough for thousands of
messages); Dovecot assigns UIDs when it next scans the folder.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import time
import uuid

from mailgate.errors import ConfigError
from .net import free_port, wait_listening
from .tls import make_ca

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
PACKAGES = ("dovecot-imapd", "dovecot-pop3d")
INSTALL_COMMAND = f"apt-get install -y {' '.join(PACKAGES)}"
INSTALL_HINT = f"install {' '.join(PACKAGES)} (make test does this as root)"
#: the unprivileged "login pool": users written before Dovecot starts, handed out instantly
POOL_PASSWORD = "secret"

CONFIG = """\
# Written by mailgate_dev.local.dovecot: a private instance, nothing shared with /etc/dovecot.
protocols = imap pop3
listen = {host}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
instance_name = mailgate-{tag}

# As root, Dovecot refuses uid 0 for mail processes (hard-coded), so the mailboxes belong to the
# system user "mail"; login processes keep the unprivileged users the Debian packages create
# (dovenull, dovecot).
first_valid_uid = 1
first_valid_gid = 1
default_login_user = dovenull
default_internal_user = dovecot
mail_uid = {uid}
mail_gid = {gid}

ssl = yes
ssl_cert = <{root}/server.pem
ssl_key = <{root}/server.key
ssl_min_protocol = TLSv1.2
# Dovecot 2.3 name of 2.4's auth_allow_cleartext: the tests log in over plain 143/110 on purpose
# (the client refuses unless the server config opts in).
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
auth_verbose = yes
login_trusted_networks =

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/passwd
  default_fields = uid={uid} gid={gid} home={root}/home/%u
}}
mail_location = maildir:{root}/mail/%u
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Archive {{
    auto = create
  }}
}}
protocol imap {{
  mail_max_userip_connections = 100
}}

service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {imap}
  }}
  inet_listener imaps {{
    address = {host}
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = {host}
    port = {pop3}
  }}
  inet_listener pop3s {{
    address = {host}
    port = {pop3s}
    ssl = yes
  }}
}}
service imap {{
  process_limit = 64
}}
pop3_uidl_format = %08Xv%08Xu
"""


def installed() -> bool:
    return all(os.path.exists(p) for p in (DOVECOT, "/usr/lib/dovecot/imap", "/usr/lib/dovecot/pop3"))


def not_installed_message() -> str:
    return (f"Dovecot is not installed: run `{INSTALL_COMMAND}` as root "
            "(`make test` does this as root)")


def mail_owner() -> tuple[int, int]:
    """Who owns the mailboxes: ourselves, or the system user "mail" when we are root."""
    if os.getuid() != 0:
        return os.getuid(), os.getgid()
    import pwd

    for name in ("mail", "dovenull", "nobody"):
        try:
            pw = pwd.getpwnam(name)
            return pw.pw_uid, pw.pw_gid
        except KeyError:
            continue
    raise ConfigError("no unprivileged user to own the mailboxes (looked for mail, dovenull, nobody): "
                      "create the system user `mail`")


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM the Dovecot master we started (it stops its children), SIGKILL if it lingers."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class DovecotServer:
    """A private Dovecot in `state_dir` (made if missing). `start()` raises ConfigError when
    Dovecot is not installed, naming the apt command."""

    def __init__(self, state_dir: pathlib.Path | str, *, host: str = "127.0.0.1", pool_size: int = 200) -> None:
        self.root = pathlib.Path(state_dir).resolve()
        self.host = host
        self.pool_size = pool_size
        self.imap_port = self.imaps_port = self.pop3_port = self.pop3s_port = 0
        self.ca_pem = self.root / "ca.pem"
        self.config_path = self.root / "dovecot.conf"
        self.passwords: dict[str, str] = {}
        self.uid, self.gid = 0, 0
        self.pool: list[str] = []
        self.pid: int | None = None
        self._counter = 0

    @property
    def ca_file(self) -> pathlib.Path:
        """The CA certificate clients trust (PEM)."""
        return self.ca_pem

    @property
    def ports(self) -> dict[str, int]:
        return {"imap": self.imap_port, "imaps": self.imaps_port, "pop3": self.pop3_port, "pop3s": self.pop3s_port}

    # -- start / stop ---------------------------------------------------------------------------
    def start(self) -> "DovecotServer":

        if not installed():
            raise ConfigError(not_installed_message(), code="dovecot-missing")
        root = self.root
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o755)
        self._check_reachable_by_mail_user()
        make_ca(root, hosts=(self.host, "localhost"), name="mailgate local Dovecot CA")
        ports = {name: free_port(self.host) for name in ("imap", "imaps", "pop3", "pop3s")}
        for sub in ("run", "state", "mail", "home"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.pool = [f"user{i:03d}" for i in range(self.pool_size)]
        self.passwords = {u: POOL_PASSWORD for u in self.pool}
        self.write_passwd()
        self.uid, self.gid = mail_owner()
        for sub in ("mail", "home"):
            if os.getuid() == 0:
                os.chown(root / sub, self.uid, self.gid)
        self.config_path.write_text(CONFIG.format(root=root, host=self.host, uid=self.uid, gid=self.gid,
                                                  tag=uuid.uuid4().hex[:8], **ports))
        # The master daemonizes; its children inherit our stdio, so never hand it a pipe.
        with open(root / "startup.log", "wb") as out:
            proc = subprocess.run([DOVECOT, "-c", str(self.config_path)], stdin=subprocess.DEVNULL,
                                  stdout=out, stderr=subprocess.STDOUT, timeout=30)
        if proc.returncode != 0:
            raise ConfigError(f"Dovecot did not start: {(root / 'startup.log').read_text().strip()}\n{self.log()}")
        self.imap_port, self.imaps_port = ports["imap"], ports["imaps"]
        self.pop3_port, self.pop3s_port = ports["pop3"], ports["pop3s"]
        # The daemonized master writes its pid file a moment after `dovecot` returns.
        self.pid = self._read_pid()
        try:
            if self.pid is None:
                raise ConfigError(f"Dovecot wrote no pid file under {root / 'run'}:\n{self.log()}")
            for port in ports.values():
                wait_listening(port, host=self.host, what="Dovecot")
        except BaseException:
            self.stop()
            raise
        return self

    def _read_pid(self, timeout: float = 10.0) -> int | None:
        path = self.root / "run" / "master.pid"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return int(path.read_text().strip())
            except (FileNotFoundError, ValueError):
                time.sleep(0.05)
        return None

    def _check_reachable_by_mail_user(self) -> None:
        """As root, the mail processes run as "mail": every directory above the state dir must let
        others through, or Dovecot fails later with an obscure permission error."""
        if os.getuid() != 0:
            return
        for parent in self.root.parents:
            if not os.stat(parent).st_mode & 0o001:
                raise ConfigError(f"{parent} is not searchable by other users, so Dovecot's mail processes "
                                  f"(user mail) cannot reach {self.root}: `chmod o+x {parent}` or choose "
                                  "another state directory")

    def stop(self, *, remove: bool = False) -> None:
        if self.pid is not None:
            stop_pid(self.pid)
            self.pid = None
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "DovecotServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- users and mailboxes ---------------------------------------------------------------------
    def _own(self, path: pathlib.Path) -> None:
        if os.getuid() == 0:
            os.chown(path, self.uid, self.gid)

    def add_user(self, user: str | None = None, password: str = POOL_PASSWORD) -> str:
        """A user with an empty INBOX; returns its name. Without arguments it hands out one of the
        users written before Dovecot started (instant); a new name or password rewrites the
        passwd-file and waits for Dovecot to notice (it looks at most once a second)."""
        if user is None and password == POOL_PASSWORD and self.pool:
            user = self.pool.pop()
        else:
            user = user or f"u{uuid.uuid4().hex[:10]}"
            self.passwords[user] = password
            self.write_passwd()
            time.sleep(1.1)
        self._mkdirs(self.maildir(user))
        return user

    def write_passwd(self) -> None:
        lines = [f"{u}:{p}::::::" for u, p in self.passwords.items()]
        tmp = self.root / "passwd.new"
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, self.root / "passwd")

    def _mkdirs(self, md: pathlib.Path) -> None:
        for sub in ("cur", "new", "tmp"):
            p = md / sub
            if not p.exists():
                p.mkdir(parents=True)
                for q in (md.parent, md, p):
                    self._own(q)

    def maildir(self, user: str, folder: str = "INBOX") -> pathlib.Path:
        base = self.root / "mail" / user
        return base if folder == "INBOX" else base / f".{folder.replace('/', '.')}"

    def deliver(self, user: str, raw: bytes, *, folder: str = "INBOX", seen: bool = False) -> str:
        """Drop one message into the Maildir (Maildir spec: write in tmp/, rename into new/ or cur/)."""
        md = self.maildir(user, folder)
        self._mkdirs(md)
        self._counter += 1
        name = f"{time.time():.6f}.M{self._counter}P{os.getpid()}.mailgate"
        tmp = md / "tmp" / name
        tmp.write_bytes(raw)
        self._own(tmp)
        final = md / ("cur" if seen else "new") / (name + (":2,S" if seen else ""))
        os.rename(tmp, final)
        return final.name

    def doveadm(self, *args: str) -> str:
        out = subprocess.run([DOVEADM, "-c", str(self.config_path), *args],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"doveadm {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout

    def reset_uidvalidity(self, user: str, folder: str = "INBOX") -> None:
        """Make the folder look recreated: new UIDVALIDITY, UIDs renumbered from 1 (RFC 3501 2.3.1.1).

        Dovecot keeps UIDs in dovecot-uidlist and its indexes; removing them makes it rebuild the
        folder from the Maildir files with a fresh UIDVALIDITY.
        """
        md = self.maildir(user, folder)
        for p in md.iterdir():
            if p.name.startswith("dovecot") and p.is_file():
                p.unlink()
        # Move every message back to new/ under a fresh name so nothing of the old UIDs survives.
        for sub in ("cur", "new"):
            for p in (md / sub).iterdir():
                self._counter += 1
                os.rename(p, md / "new" / f"{time.time():.6f}.R{self._counter}.mailgate")
        # Dovecot derives UIDVALIDITY from the clock (seconds); make sure it cannot repeat.
        time.sleep(1.1)

    def message_files(self, user: str, folder: str = "INBOX") -> list[pathlib.Path]:
        md = self.maildir(user, folder)
        return [p for sub in ("cur", "new") if (md / sub).exists() for p in (md / sub).iterdir()]

    def log(self) -> str:
        p = self.root / "dovecot.log"
        return p.read_text(errors="replace") if p.exists() else ""
