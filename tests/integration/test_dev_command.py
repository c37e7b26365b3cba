"""`mailgate dev` as `make run` starts it: prints where each part listens, stops on Ctrl-C."""

import signal
import socket
import subprocess
import sys
import time

import pytest

from mailgate_dev.cli.main import main
from mailgate_dev.local.stack import free_port

pytestmark = pytest.mark.integration


def test_mailgate_dev_runs_until_ctrl_c_and_cleans_up(tmp_path):
    ports = [str(free_port()) for _ in range(4)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailgate_dev.cli.main", "dev", "--aws-port", ports[0], "--smtp-port", ports[1],
         "--sink-port", ports[2], "--api-port", ports[3], "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        text = "".join(lines)
        assert "mailgate local stack is running" in text, text
        assert f"127.0.0.1:{ports[1]}" in text and f"127.0.0.1:{ports[2]}" in text
        assert f"HTTP API                 http://127.0.0.1:{ports[3]}/v1/" in text
        assert (tmp_path / "stack.json").exists()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert out.rstrip().endswith("stopped.")
    assert not (tmp_path / "stack.json").exists()


def test_a_port_already_taken_is_one_line_naming_the_port(capsys, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        code = main(["dev", "--aws-port", str(taken), "--state-dir", str(tmp_path)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert code == 1
    assert f"port {taken} for the AWS emulator is already in use" in lines[0]
