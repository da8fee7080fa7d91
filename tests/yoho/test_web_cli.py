"""`yoho serve`: clear one-line errors, and a real start and stop of the server."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
from typer.testing import CliRunner

from yoho.cli import app
from yoho.web.background import free_port


def _serve(*args: str):
    return CliRunner().invoke(app, ["serve", *args])


def test_serve_reports_bad_options_in_one_line(tmp_path):
    results = ["--results", str(tmp_path / "results")]
    for args, message in [
        (["--data", str(tmp_path / "missing")], "data folder not found"),
        (["--profile", "huge"], "'huge' is not one of 'cpu'"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--max-upload-mb", "0"], "must be positive"),
        (["--port", "70000"], "port 70000 is not between 1 and 65535"),
    ]:
        port = [] if "--port" in args else ["--port", str(free_port())]
        result = _serve(*args, *results, *port)
        assert result.exit_code == 2, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_serve_reports_a_busy_port(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve("--port", str(port), "--results", str(tmp_path))
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


def test_serve_warns_loudly_when_exposed_beyond_this_machine(tmp_path, monkeypatch):
    import uvicorn

    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: started.update(kwargs))
    result = _serve("--host", "0.0.0.0", "--port", str(free_port()), "--results", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert started["host"] == "0.0.0.0"
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())  # without the box
    assert "WARNING" in text and "NO login and NO encryption" in text
    assert "open http://127.0.0.1:" in text  # where this machine's own browser finds it


def test_serve_starts_answers_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "yoho.cli", "serve", "--port", str(port)]
    command += ["--results", str(tmp_path / "results"), "--data", str(tmp_path), "-p", "tiny"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        deadline = time.monotonic() + 60
        health = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert health is not None and health.json() == {"ok": True, "jobs": {}}
        config = httpx.get(f"http://127.0.0.1:{port}/api/config").json()
        assert config["profile"] == "tiny" and config["data"] is True
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert f"open http://127.0.0.1:{port}/" in err
    assert "WARNING" not in err  # localhost: no remote-access warning
    assert (tmp_path / "results").is_dir()
