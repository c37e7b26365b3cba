#!/usr/bin/env bash
# Print the path of a working Python 3.12 (Lambda's runtime), or explain how to get one.
# pyenv machines have 3.12 installed but not as the default, so its shim alone is not enough.
set -u
candidates=("${PYTHON:-}" python3.12)
root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
for d in "$root"/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12; do
  candidates+=("$d")
done
for c in "${candidates[@]}"; do
  [ -n "$c" ] || continue
  if out=$("$c" -c 'import sys; print(sys.executable) if sys.version_info[:2] == (3, 12) else sys.exit(1)' 2>/dev/null); then
    echo "$out"; exit 0
  fi
done
echo "mailgate needs Python 3.12 (the Lambda runtime): install it with 'pyenv install 3.12' or 'apt-get install python3.12', or set PYTHON=/path/to/python3.12" >&2
exit 1
