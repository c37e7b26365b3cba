"""`mailgate dkim keygen`: make a DKIM key, store it in the secret store, print the DNS record."""

from __future__ import annotations

import sys

from . import common


def register(subparsers) -> None:
    p = subparsers.add_parser("dkim", help="DKIM keys for outbound signing")
    sub = p.add_subparsers(dest="dkim_command", metavar="ACTION")
    k = sub.add_parser("keygen", help="make and store a key, print the DNS record to publish",
                       description="Make a DKIM key for DOMAIN, store it in Secrets Manager and print the TXT "
                                   "record to publish. With the gateway's own domain, it is the shared key that "
                                   "customers CNAME to.")
    k.add_argument("domain")
    k.add_argument("--selector", help="DKIM selector (default: the alias domain's, else 'mailgate'); an "
                                      "Ed25519 key gets '-ed25519' appended")
    k.add_argument("--type", choices=["rsa", "ed25519"], default="rsa", help="rsa (2048 bit, default) or ed25519")
    k.add_argument("--bits", type=int, default=2048, help="RSA key size (default 2048)")
    k.add_argument("--force", action="store_true", help="replace an existing key (mail signed with the old key "
                                                        "fails DKIM until the new record is published)")
    common.add_json_flag(k)
    k.set_defaults(func=cmd_keygen)
    p.set_defaults(func=lambda args: (p.print_help(), common.EXIT_USAGE)[1])


def cmd_keygen(args) -> int:
    from mailgate import dkim as D
    from mailgate import keyring
    from mailgate.errors import NotFound

    domain = args.domain.strip().rstrip(".").lower()
    if "." not in domain or any(ch.isspace() for ch in domain):
        print(f"mailgate: {args.domain!r} is not a domain name", file=sys.stderr)
        return common.EXIT_USAGE
    if args.type == "rsa" and not 1024 <= args.bits <= 4096:
        print("mailgate: --bits must be between 1024 and 4096 (2048 is the usual choice)", file=sys.stderr)
        return common.EXIT_USAGE
    c = common.get_container(args)
    item = c.config.get_domain(domain)
    selector = args.selector or (item.dkim_selector if item else "mailgate")
    if args.type == "ed25519" and not selector.endswith(D.ED25519_SUFFIX):
        selector += D.ED25519_SUFFIX  # the signer looks for the Ed25519 key under this name
    sid = keyring.secret_id(c.settings, domain, selector)
    try:
        c.secrets.get(sid)
        exists = True
    except NotFound:
        exists = False
    if exists and not args.force:
        return common.fail(f"a key already exists for {selector}._domainkey.{domain} (secret {sid}); pass --force "
                           "to replace it, or rotate without a gap: `mailgate dkim keygen "
                           f"{domain} --selector NEW`, publish its record, then `mailgate domain add {domain} "
                           "--dkim-selector NEW`")
    key = D.generate_key(args.type, args.bits)
    c.secrets.put(sid, D.private_pem(key))
    c.signing_keys.forget()  # the next send in this process signs with the new key
    name = f"{selector}._domainkey.{domain}"
    line = D.dns_record(domain, selector, key)
    data = {"domain": domain, "selector": selector, "type": args.type, "secret_id": sid, "record_name": name,
            "record_type": "TXT", "value": D.public_txt(key), "zone_line": line}
    text = [f"stored the private key in {sid}", "publish this DNS record:", "", line, ""]
    gateway = (c.settings.gateway_domain or "").lower()
    if domain == gateway:
        data["customer_cname"] = f"{selector}._domainkey.<customer domain>. CNAME {name}."
        text += ["this is the gateway's shared key; a customer domain uses it by publishing:",
                 f"  {selector}._domainkey.<customer domain>. 3600 IN CNAME {name}.", ""]
    common.emit(args, data, "\n".join(text))
    return common.EXIT_OK
