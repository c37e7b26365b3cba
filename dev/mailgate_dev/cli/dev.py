"""`mailgate dev`: run the local stack in the foreground until Ctrl-C."""

from __future__ import annotations

import logging
import pathlib
import signal
import threading

from .common import EXIT_OK


def register(sub) -> None:
    p = sub.add_parser("dev", help="run the gateway locally: AWS emulator, SES-like SMTP listener, schedule, sink")
    p.add_argument("--aws-port", type=int, default=4566, help="AWS emulator port (default 4566)")
    p.add_argument("--smtp-port", type=int, default=2525, help="SES-receiving SMTP port (default 2525)")
    p.add_argument("--sink-port", type=int, default=1025, help="outbound SMTP sink port (default 1025)")
    p.add_argument("--api-port", type=int, default=3000, help="HTTP API port (default 3000)")
    p.add_argument("--fetch-every", type=float, default=60.0, metavar="SECONDS",
                   help="how often the fetch schedule fires (default 60 s; Lambda's default is 5 min)")
    p.add_argument("--domain", default="example.test", help="the demo alias domain (default example.test)")
    p.add_argument("--state-dir", default=".local", help="where the local stack keeps its state (.local)")
    p.add_argument("--imap", action="store_true",
                   help="also start a private Dovecot with a demo mailbox and an incoming server fetching it "
                        "(needs dovecot-imapd dovecot-pop3d)")
    p.set_defaults(func=cmd_dev)


def cmd_dev(args) -> int:
    from ..local.stack import LocalStack, Ports

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for noisy in ("botocore", "urllib3", "mail.log", "werkzeug", "pynamodb"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stack = LocalStack(state_dir=pathlib.Path(args.state_dir),
                       ports=Ports(aws=args.aws_port, smtp=args.smtp_port, sink=args.sink_port, api=args.api_port),
                       fetch_every=args.fetch_every, gateway_domain=args.domain, imap=args.imap)
    stop = threading.Event()
    # Ctrl-C and a service manager's TERM both stop cleanly (set explicitly: a shell starts
    # background jobs with SIGINT ignored).
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("starting the local stack (AWS emulator, template deployment, SMTP listeners)...", flush=True)
    stack.start()
    try:
        print(stack.describe(), flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping the local stack...", flush=True)
        stack.stop()
        print("stopped.", flush=True)
    return EXIT_OK
