"""Stay logged in to Monzo from Python: a valid access token whenever you ask.

This package drives the ``monzo-auth`` command it ships with (one implementation of login,
storage and refresh): the login lives in a profile (the OS keyring, or a file only you can read),
and ``token()`` hands back a valid access token, refreshing it through your monzo-auth service
when it is close to expiring. The refresh token never leaves the profile.

    import monzo_auth, requests

    monzo_auth.login("https://abc123.execute-api.eu-west-2.amazonaws.com/")   # once
    token = monzo_auth.token()
    requests.get("https://api.monzo.com/ping/whoami", auth=monzo_auth.BearerAuth())

Every failure is a :class:`MonzoAuthError` subclass, one per exit code of the command, carrying
its one-line message.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
from dataclasses import dataclass
from typing import Any, Generator, Optional, Sequence

__all__ = [
    "AccessDenied",
    "ApprovalTimeout",
    "BearerAuth",
    "Interrupted",
    "KeyringUnavailable",
    "Login",
    "LoginExpired",
    "LoginFailed",
    "LoginInvalid",
    "MonzoAuthError",
    "NotLoggedIn",
    "ProfileStatus",
    "ServiceUnavailable",
    "TokenInfo",
    "UsageError",
    "api_url",
    "binary",
    "login",
    "logout",
    "status",
    "token",
    "token_info",
]


class MonzoAuthError(Exception):
    """A ``monzo-auth`` command failed; ``str()`` is its one-line message."""

    #: The command's exit code.
    exit_code: int = 1

    def __init__(self, message: str, exit_code: Optional[int] = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(MonzoAuthError):
    """A bad argument (exit code 2)."""

    exit_code = 2


class AccessDenied(MonzoAuthError):
    """Access was denied at Monzo, or the service does not allow this Monzo user (3)."""

    exit_code = 3


class LoginExpired(MonzoAuthError):
    """The login session expired before the login was completed (4)."""

    exit_code = 4


class ServiceUnavailable(MonzoAuthError):
    """The monzo-auth service could not be reached, or stayed unavailable (5)."""

    exit_code = 5


class LoginFailed(MonzoAuthError):
    """Monzo refused the login or the refresh token, or another failure (6)."""

    exit_code = 6


class ApprovalTimeout(MonzoAuthError):
    """Access was not approved in the Monzo app in time (7)."""

    exit_code = 7


class NotLoggedIn(MonzoAuthError):
    """No such profile: log in first (8)."""

    exit_code = 8


class LoginInvalid(MonzoAuthError):
    """The stored login is no longer valid: log in again (9)."""

    exit_code = 9


class KeyringUnavailable(MonzoAuthError):
    """The keyring (or the profile's file) cannot be reached, or is locked (10)."""

    exit_code = 10


class Interrupted(MonzoAuthError):
    """The command was interrupted (130)."""

    exit_code = 130


_BY_CODE = {
    cls.exit_code: cls
    for cls in (
        UsageError,
        AccessDenied,
        LoginExpired,
        ServiceUnavailable,
        LoginFailed,
        ApprovalTimeout,
        NotLoggedIn,
        LoginInvalid,
        KeyringUnavailable,
        Interrupted,
    )
}


def binary() -> str:
    """The ``monzo-auth`` command this package installed (or, failing that, the one on PATH)."""
    scripts = sysconfig.get_path("scripts")
    name = "monzo-auth.exe" if sys.platform == "win32" else "monzo-auth"
    for candidate in (os.path.join(scripts, name), os.path.join(os.path.dirname(sys.executable), name)):
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("monzo-auth")
    if found is None:
        raise MonzoAuthError("the monzo-auth command is not installed next to this Python")
    return found


def _run(args: Sequence[str], *, stdin_tty: bool = False) -> str:
    """Runs the command; its stdout on success, else the exception for its exit code."""
    done = subprocess.run(
        [binary(), *args],
        stdin=None if stdin_tty else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    if done.returncode == 0:
        return done.stdout
    raise _failure(done.returncode, done.stderr)


def _failure(code: int, stderr: str) -> MonzoAuthError:
    """The exception for exit code ``code``, with the command's last line on stderr."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    message = lines[-1] if lines else f"monzo-auth exited with {code}"
    if message.startswith("monzo-auth: "):
        message = message[len("monzo-auth: ") :]
    return _BY_CODE.get(code, MonzoAuthError)(message, code)


def _profile_args(profile: Optional[str]) -> list[str]:
    return ["--profile", profile] if profile else []


@dataclass(frozen=True)
class Login:
    """A login kept in a profile."""

    profile: str
    user_id: str
    #: When the access token expires, in seconds since the epoch.
    expires_at: int


@dataclass(frozen=True)
class ProfileStatus:
    """What ``monzo-auth status`` says of one profile."""

    profile: str
    user_id: Optional[str]
    service: Optional[str]
    #: ``keyring`` or ``file``.
    backend: Optional[str]
    expires_at: Optional[int]
    #: ``valid``, ``expired``, ``evicted``, ``rejected``, ``unreachable``, ``unknown`` or ``unchecked``.
    monzo: str
    approval_pending: Optional[bool]
    problem: Optional[str]
    #: When the login was approved at Monzo, and the day 90 days on by which Monzo may ask for
    #: approval again (seconds since the epoch; unknown for an imported login).
    approved_at: Optional[int] = None
    reapprove_by: Optional[int] = None


@dataclass(frozen=True)
class TokenInfo:
    """A valid access token and what goes with it (never the refresh token)."""

    access_token: str
    #: When it expires, in seconds since the epoch.
    expires_at: int
    user_id: str
    #: Monzo's API the token is for: ``https://api.monzo.com``, or the demo's stand-in (no
    #: trailing slash, so ``api_url + "/ping/whoami"`` is right).
    api_url: str


def token(profile: Optional[str] = None, *, min_valid: int = 300) -> str:
    """A valid access token of the profile (``MONZO_AUTH_PROFILE``, or ``default``), refreshed
    first when it has ``min_valid`` seconds or fewer left. Never the refresh token."""
    return token_info(profile, min_valid=min_valid).access_token


def token_info(profile: Optional[str] = None, *, min_valid: int = 300) -> TokenInfo:
    """Like :func:`token`, with the token's expiry and user, for libraries that want them."""
    data = _token_json(profile, min_valid)
    return TokenInfo(
        access_token=str(data["access_token"]),
        expires_at=int(data["expires_at"]),
        user_id=str(data["user_id"]),
        api_url=str(data.get("monzo_api_url") or "https://api.monzo.com"),
    )


def api_url(profile: Optional[str] = None) -> str:
    """Monzo's API for the profile's token: ``https://api.monzo.com`` for a real service, the
    stand-in's for a demo one (as the service advertised it at login), without a trailing slash."""
    return token_info(profile).api_url


def _token_json(profile: Optional[str], min_valid: int) -> dict[str, Any]:
    out = _run(["token", *_profile_args(profile), "--min-valid", str(min_valid), "--format", "json"])
    parsed: dict[str, Any] = json.loads(out)
    return parsed


def login(
    service: Optional[str] = None,
    profile: Optional[str] = None,
    *,
    no_browser: bool = False,
    wait_for_approval: bool = False,
    store: Optional[str] = None,
) -> Login:
    """Logs in to Monzo through ``service`` (default: the profile's, from an earlier login) and
    keeps the login in the profile. Opens a browser where there is a display; with
    ``no_browser`` prints a code to enter on any device. Prompts and progress go to stderr."""
    args = ["login", *_profile_args(profile)]
    if service:
        args += ["--service", service]
    if no_browser:
        args.append("--no-browser")
    if wait_for_approval:
        args.append("--wait-for-approval")
    if store:
        args += ["--store", store]
    # The person must see the URL or code and the progress: stderr is passed on as it comes,
    # and its last line kept for the exception.
    process = subprocess.Popen(
        [binary(), *args], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    last = ""
    for line in process.stderr:
        sys.stderr.write(line)
        if line.strip():
            last = line
    code = process.wait()
    if code != 0:
        raise _failure(code, last)
    data = _token_json(profile, 0)
    return Login(
        profile=profile or os.environ.get("MONZO_AUTH_PROFILE", "default"),
        user_id=data["user_id"],
        expires_at=int(data["expires_at"]),
    )


def status(profile: Optional[str] = None, *, all_profiles: bool = False) -> list[ProfileStatus]:
    """What is stored and whether Monzo still accepts it, per profile. Stored facts come back
    even when Monzo or the keyring cannot be reached (``problem`` says why)."""
    args = ["status", "--format", "json"]
    args += ["--all"] if all_profiles else _profile_args(profile)
    done = subprocess.run([binary(), *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    try:
        reports = json.loads(done.stdout)
    except ValueError:
        raise _failure(done.returncode, done.stderr) from None
    return [
        ProfileStatus(
            profile=r["profile"],
            user_id=r.get("user_id"),
            service=r.get("service"),
            backend=r.get("backend"),
            expires_at=r.get("expires_at"),
            monzo=r.get("monzo", "unchecked"),
            approval_pending=r.get("approval_pending"),
            problem=r.get("problem"),
            approved_at=r.get("approved_at"),
            reapprove_by=r.get("reapprove_by"),
        )
        for r in reports
    ]


def logout(profile: Optional[str] = None, *, all_profiles: bool = False) -> None:
    """Logs out at Monzo (through the service) and forgets the profile."""
    _run(["logout", *(["--all"] if all_profiles else _profile_args(profile))])


class BearerAuth:
    """An ``auth=`` object for requests and httpx that sets ``Authorization: Bearer`` to the
    profile's token, asking ``monzo-auth`` only when the cached one is near expiry (``margin``
    seconds), not on every request.

        session = requests.Session()
        session.auth = monzo_auth.BearerAuth()
        httpx.Client(auth=monzo_auth.BearerAuth())
    """

    requires_request_body = False
    requires_response_body = False

    def __init__(self, profile: Optional[str] = None, *, margin: int = 300) -> None:
        self.profile = profile
        self.margin = margin
        self._token: Optional[str] = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def current(self) -> str:
        """The cached token, or a fresh one from ``monzo-auth token``."""
        with self._lock:
            if self._token is None or time.time() >= self._expires_at - self.margin:
                data = _token_json(self.profile, self.margin)
                self._token = str(data["access_token"])
                self._expires_at = float(data["expires_at"])
            return self._token

    # requests: auth(request) -> request
    def __call__(self, request: Any) -> Any:
        request.headers["Authorization"] = f"Bearer {self.current()}"
        return request

    # httpx: the auth flow protocol
    def auth_flow(self, request: Any) -> Generator[Any, Any, None]:
        request.headers["Authorization"] = f"Bearer {self.current()}"
        yield request

    def sync_auth_flow(self, request: Any) -> Generator[Any, Any, None]:
        return self.auth_flow(request)
