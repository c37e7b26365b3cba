"""The built layer and functions carry their bytecode (scripts/compile-build.sh, run by `make
build` after `sam build`): Lambda's /opt and /var/task are read-only, so sources without .pyc
are compiled again at every cold start."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "compile-build.sh"


def test_every_source_gets_bytecode_python_loads_without_reading_the_source_again(tmp_path):
    pkg = tmp_path / "python" / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "mod.py").write_text("ANSWER = 'compiled'\n")
    done = subprocess.run([str(SCRIPT), sys.executable, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    pyc = pkg / "sub" / "__pycache__" / f"mod.{sys.implementation.cache_tag}.pyc"
    flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    assert flags == 0b01  # PEP 552: hash-based, source not checked
    # as on Lambda: the source is not what was compiled, and nothing may be written
    (pkg / "sub" / "mod.py").write_text("ANSWER = 'source'\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "python"), PYTHONDONTWRITEBYTECODE="1")
    out = subprocess.run([sys.executable, "-c", "from pkg.sub.mod import ANSWER; print(ANSWER)"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "compiled"


def test_a_source_that_does_not_compile_fails_the_build(tmp_path):
    (tmp_path / "broken.py").write_text("def (:\n")
    done = subprocess.run([str(SCRIPT), sys.executable, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode != 0 and "broken.py" in done.stderr


def test_make_build_compiles_what_sam_built():
    makefile = (REPO / "Makefile").read_text()
    build = makefile.split("\nbuild:", 1)[1].split("\n\n", 1)[0]
    assert "sam build" in build and "scripts/compile-build.sh" in build
