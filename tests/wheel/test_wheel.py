"""The pip package as a person gets it: the wheel installed into a fresh virtualenv outside the
source tree (`make test` does that and runs this file with that virtualenv's Python), against a
`monzo-auth-server --demo` of this build and its stand-in for Monzo. Every test has its own
configuration directory and no session bus, so profiles live in owner-only files.

Environment: MONZO_AUTH_SERVER and FAKE_MONZO, the paths of this build's binaries.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

import monzo_auth

ROOT = Path(__file__).resolve().parents[2]
DEMO_USER = "user_0000demo"


def test_the_package_is_the_installed_wheel_not_the_source_tree() -> None:
    assert "site-packages" in monzo_auth.__file__, monzo_auth.__file__
    assert Path(monzo_auth.binary()).parent == Path(sys.executable).parent


class Server:
    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [os.environ["MONZO_AUTH_SERVER"], "--demo"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        address = re.search(r"listening on (\S+);", first)
        assert address, first
        self.base = f"http://{address.group(1)}/"
        with urllib.request.urlopen(self.base + ".well-known/oauth-authorization-server") as answer:
            self.api = json.load(answer)["monzo_api_url"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_RUNTIME_DIR": str(home / "runtime"),
        "DBUS_SESSION_BUS_ADDRESS": f"unix:path={home / 'no-bus'}",
        "BROWSER": f"{shlex.quote(os.environ['FAKE_MONZO'])} approve",
    }
    env.update(extra)
    return env


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "config").mkdir()
    (tmp_path / "runtime").mkdir()
    for name, value in clean_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MONZO_AUTH_PROFILE", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    return tmp_path


@pytest.fixture
def server(home: Path) -> Iterator[Server]:
    running = Server(clean_env(home, LISTEN_ADDR="127.0.0.1:0", STORE="memory"))
    yield running
    running.stop()


def logged_in(server: Server, profile: str | None = None) -> monzo_auth.Login:
    return monzo_auth.login(server.base, profile)


def profile_file(home: Path, name: str = "default") -> Path:
    return home / "config" / "monzo-auth" / "profiles" / f"{name}.json"


def whoami(api: str, token: str) -> dict[str, object]:
    import requests

    answer = requests.get(api.rstrip("/") + "/ping/whoami", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def test_the_console_script_logs_in_and_token_returns_the_stored_token(server: Server, home: Path) -> None:
    done = subprocess.run(["monzo-auth", "login", "--service", server.base], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"Logged in as {DEMO_USER}" in done.stderr
    stored = json.loads(profile_file(home).read_text())
    assert stored["backend"] == "file"
    token = monzo_auth.token()
    assert token == stored["secrets"]["access_token"]
    assert whoami(server.api, token)["user_id"] == DEMO_USER
    info = monzo_auth.token_info()
    assert info.user_id == DEMO_USER and info.expires_at == stored["expires_at"]
    # python -m monzo_auth is the same command.
    module = subprocess.run([sys.executable, "-m", "monzo_auth", "token"], capture_output=True, text=True)
    assert module.stdout.strip() == token, module.stderr


def test_token_refreshes_when_due_and_the_profile_keeps_the_new_pair(server: Server, home: Path) -> None:
    login = logged_in(server)
    assert login.user_id == DEMO_USER and login.profile == "default"
    stored = json.loads(profile_file(home).read_text())
    stored["expires_at"] = 1
    profile_file(home).write_text(json.dumps(stored))
    fresh = monzo_auth.token()
    assert fresh != stored["secrets"]["access_token"]
    assert whoami(server.api, fresh)["user_id"] == DEMO_USER
    again = json.loads(profile_file(home).read_text())
    assert again["secrets"]["refresh_token"] != stored["secrets"]["refresh_token"]


def test_each_failure_is_its_own_exception_with_the_commands_message(server: Server, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(monzo_auth.NotLoggedIn, match="not logged in") as not_logged_in:
        monzo_auth.token("nobody")
    assert not_logged_in.value.exit_code == 8

    monkeypatch.setenv("BROWSER", f"{shlex.quote(os.environ['FAKE_MONZO'])} approve --deny")
    with pytest.raises(monzo_auth.AccessDenied):
        monzo_auth.login(server.base, "denied")

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(monzo_auth.ServiceUnavailable):
        monzo_auth.login(f"http://127.0.0.1:{port}/", "down")

    with pytest.raises(monzo_auth.UsageError, match="did you mean"):
        monzo_auth.login("127.0.0.1:3000", "typo")

    # A login nobody finishes: the session expires.
    monkeypatch.setenv("BROWSER", "true")
    short = Server(clean_env(home, LISTEN_ADDR="127.0.0.1:0", STORE="memory", SESSION_TTL_SECS="2"))
    try:
        with pytest.raises(monzo_auth.LoginExpired):
            monzo_auth.login(short.base, "slow")
    finally:
        short.stop()

    # Monzo refuses the stored refresh token (spent elsewhere): log in again.
    monkeypatch.setenv("BROWSER", f"{shlex.quote(os.environ['FAKE_MONZO'])} approve")
    logged_in(server)
    stored = json.loads(profile_file(home).read_text())
    import requests

    spent = requests.post(
        server.base + "oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": stored["secrets"]["refresh_token"]},
    )
    assert spent.status_code == 200
    stored["expires_at"] = 1
    profile_file(home).write_text(json.dumps(stored))
    with pytest.raises(monzo_auth.LoginInvalid, match="log in again"):
        monzo_auth.token()


def test_status_and_logout(server: Server, home: Path) -> None:
    logged_in(server)
    [report] = monzo_auth.status()
    assert report.user_id == DEMO_USER and report.monzo == "valid" and report.backend == "file"
    token = monzo_auth.token()
    monzo_auth.logout()
    assert not profile_file(home).exists()
    import requests

    assert requests.get(server.api.rstrip("/") + "/ping/whoami", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    with pytest.raises(monzo_auth.NotLoggedIn):
        monzo_auth.token()


def test_the_auth_helper_caches_the_token_for_requests_and_httpx(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx
    import requests

    logged_in(server)
    calls = []
    real = monzo_auth._token_json

    def counted(profile: str | None, min_valid: int) -> dict[str, object]:
        calls.append(min_valid)
        return real(profile, min_valid)

    monkeypatch.setattr(monzo_auth, "_token_json", counted)
    auth = monzo_auth.BearerAuth()
    session = requests.Session()
    session.auth = auth
    for _ in range(3):
        assert session.get(server.api.rstrip("/") + "/ping/whoami").json()["user_id"] == DEMO_USER
    with httpx.Client(auth=auth) as client:
        assert client.get(server.api.rstrip("/") + "/ping/whoami").json()["user_id"] == DEMO_USER
    assert len(calls) == 1, "one call to monzo-auth for four requests"


# ---- The recipes in python/README.md, run as written.


def recipe(heading: str, language: str = "python") -> str:
    text = (ROOT / "python" / "README.md").read_text()
    section = text[text.index(f"### {heading}\n") :]
    start = section.index(f"```{language}\n") + len(f"```{language}\n")
    return section[start : section.index("\n```", start)]


@pytest.mark.parametrize("library", ["requests", "pymonzo", "monzoh", "monzo-api"])
def test_each_library_recipe_makes_an_authenticated_call(library: str, server: Server, home: Path) -> None:
    # Exactly as written: the recipe finds the stand-in through monzo_auth.api_url().
    logged_in(server)
    script = home / "recipe.py"
    script.write_text(recipe(library))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == DEMO_USER, done.stdout + done.stderr
    assert monzo_auth.api_url() == server.api.rstrip("/")


def test_the_exec_recipe_hands_a_script_the_token(server: Server, home: Path) -> None:
    logged_in(server)
    command = recipe("Any script that reads `MONZO_ACCESS_TOKEN`", "sh").strip()
    assert command == "monzo-auth exec -- python3 my_script.py"
    (home / "my_script.py").write_text(
        textwrap.dedent(
            f"""
            import json, os, urllib.request
            request = urllib.request.Request(os.environ["MONZO_API_URL"] + "/ping/whoami",
                headers={{"Authorization": "Bearer " + os.environ["MONZO_ACCESS_TOKEN"]}})
            print(json.load(urllib.request.urlopen(request))["user_id"], os.environ["MONZO_USER_ID"])
            """
        )
    )
    done = subprocess.run(shlex.split(command), cwd=home, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [DEMO_USER, DEMO_USER]
