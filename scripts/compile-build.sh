#!/usr/bin/env bash
# After `sam build`: compile every Python source of the built layer and functions to bytecode
# that Python loads without looking at the source again (PEP 552 "unchecked-hash" .pyc files).
#
# Why: Lambda mounts a layer at /opt and a function at /var/task read-only, so Python cannot
# write the .pyc it makes on import. A layer shipped as sources is compiled again at every cold
# start: ~0.4 s for one handler's imports (botocore, urllib3, pynamodb, Powertools, mailgate;
# bench/coldstart.py prints it). sam build copies sources only, and sam deploy zips what this
# leaves in .aws-sam/build.
#
# usage: scripts/compile-build.sh PYTHON3.12 [BUILD_DIR]   (exits 1 if a source has no bytecode)
set -euo pipefail
py=${1:?usage: compile-build.sh PYTHON3.12 [BUILD_DIR]}
dir=${2:-.aws-sam/build}
[ -d "$dir" ] || { echo "compile-build: no $dir (run sam build first)" >&2; exit 1; }
if ! out=$("$py" -m compileall -q -j 0 --invalidation-mode unchecked-hash "$dir" 2>&1); then
  echo "compile-build: a source does not compile:" >&2
  echo "$out" >&2
  exit 1
fi
tag=$("$py" -c 'import sys; print(sys.implementation.cache_tag)')
missing=0
while IFS= read -r -d '' src; do
  pyc="$(dirname "$src")/__pycache__/$(basename "$src" .py).$tag.pyc"
  if [ ! -f "$pyc" ]; then
    echo "compile-build: no bytecode for $src" >&2
    missing=$((missing + 1))
  fi
done < <(find "$dir" -name '*.py' -print0)
[ "$missing" -eq 0 ] || exit 1
echo "compile-build: $(find "$dir" -name "*.$tag.pyc" | wc -l) modules compiled in $dir ($tag, unchecked-hash)"
