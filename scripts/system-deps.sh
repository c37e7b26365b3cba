#!/usr/bin/env bash
# Debian packages the tests and the demo need: Dovecot for the IMAP/POP fetch path.
# As root they are installed; otherwise one line says the exact command to run.
set -u
packages=(dovecot-imapd dovecot-pop3d)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "mailgate: the tests need Dovecot (${missing[*]}); install it with your system's package manager" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "mailgate: the tests need ${missing[*]}: run 'sudo apt-get update && sudo apt-get install -y ${missing[*]}'" >&2
  exit 1
fi
echo "installing ${missing[*]} (Debian packages for the IMAP/POP tests)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
  || { echo "mailgate: apt-get could not install ${missing[*]}" >&2; exit 1; }
# The package's own service is not used: the tests start private Dovecot instances.
exit 0
