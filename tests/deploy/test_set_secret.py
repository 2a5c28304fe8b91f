"""`make set-secret`: the secret from a pipe or a no-echo prompt (never argv), encrypted with the
stack's own key under the context the token function decrypts with; a refusal changes nothing.
Also: the deploy scripts on Python 3.10 (tomli where tomllib is missing)."""

import ast
import base64
import os
import pty
import secrets
import select
import subprocess
import sys
import time

import boto3
import pytest

from conftest import (
    DEPLOY_VENV,
    REPO,
    create_transformed_stack,
    make,
    packaged_template,
    stack_parameters,
    template_parameters,
)


@pytest.fixture
def deployed(project, stack):
    template = packaged_template(project)
    create_transformed_stack(stack, template, template_parameters(template))
    return stack


def test_a_refused_secret_changes_nothing(project, deployed):
    done = make(project, "set-secret", f"STACK={deployed}", "CLIENT_ID=oauth2client_1", stdin_text="\n")
    assert done.returncode != 0
    assert "make set-secret: no secret given; nothing changed" in done.output
    assert stack_parameters(deployed)["MonzoClientSecretCiphertext"] == ""


def test_without_a_terminal_the_client_id_must_be_given(project, deployed):
    done = make(project, "set-secret", f"STACK={deployed}", stdin_text="mnzconf.x\n")
    assert done.returncode != 0
    assert "CLIENT_ID=" in done.output and "nothing changed" in done.output
    assert stack_parameters(deployed)["MonzoClientId"] == ""


def test_no_stack_is_a_clear_error(project, stack):
    done = make(project, "set-secret", f"STACK={stack}", "CLIENT_ID=c", stdin_text="s\n")
    assert done.returncode != 0
    assert f"no stack {stack} in eu-west-2: run `make deploy` first" in done.output


def test_no_credentials_is_one_clear_line(project, stack):
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    done = make(project, "set-secret", f"STACK={stack}", "CLIENT_ID=c", stdin_text="s\n", env=env)
    assert done.returncode != 0
    assert "make set-secret: no AWS credentials: run `aws configure`" in done.output
    assert "Traceback" not in done.output


def test_a_stack_name_that_cannot_be_is_refused(project):
    done = make(project, "deploy", "NO_BUILD=1", "STACK=no_underscores")
    assert done.returncode != 0
    assert "STACK: 'no_underscores' is not a stack name" in done.output


def read_until(fd, wanted, seconds=60):
    seen = b""
    deadline = time.monotonic() + seconds
    while wanted not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"waited for {wanted!r}, saw {seen!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            assert chunk, f"the command ended before {wanted!r}: {seen!r}"
            seen += chunk
    return seen


def test_a_person_at_a_terminal_is_asked_and_the_secret_is_not_shown(project, deployed):
    """As a person runs it: `make set-secret` on a terminal asks for the client id (shown) and
    then the secret (not shown)."""
    secret = "mnzconf." + secrets.token_urlsafe(24)
    pid, fd = pty.fork()
    if pid == 0:  # the child: make, on the pseudo-terminal
        os.chdir(project)
        os.execvp("make", ["make", "--no-print-directory", "set-secret", f"DEPLOY_VENV={DEPLOY_VENV}", f"STACK={deployed}"])
    try:
        screen = read_until(fd, b"Monzo client id: ")
        os.write(fd, b"oauth2client_tty\n")
        screen += read_until(fd, b"Monzo client secret (not shown): ")
        os.write(fd, secret.encode() + b"\n")
        screen += read_until(fd, b"Done: the client is set.")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, screen
    assert b"oauth2client_tty" in screen, "the id is echoed"
    assert secret.encode() not in screen, "the secret is not"
    parameters = stack_parameters(deployed)
    assert parameters["MonzoClientId"] == "oauth2client_tty"
    plain = boto3.client("kms").decrypt(
        CiphertextBlob=base64.b64decode(parameters["MonzoClientSecretCiphertext"]),
        EncryptionContext={"app": "monzo-auth"},
    )["Plaintext"]
    assert plain == secret.encode()
    wrong = boto3.client("kms")
    with pytest.raises(wrong.exceptions.ClientError):
        wrong.decrypt(
            CiphertextBlob=base64.b64decode(parameters["MonzoClientSecretCiphertext"]),
            EncryptionContext={"app": "other"},
        )


def test_the_scripts_parse_as_python_3_10():
    for script in (REPO / "scripts").glob("*.py"):
        ast.parse(script.read_text(), filename=str(script), feature_version=(3, 10))


def test_the_scripts_run_with_tomli_where_tomllib_is_missing(project, deployed):
    """Python 3.10 has no tomllib: the same set-secret reads samconfig.toml through tomli."""
    done = make(project, "deploy", "NO_BUILD=1", f"STACK={deployed}")
    assert done.returncode == 0, done.output
    runner = (
        "import runpy, sys\n"
        "sys.modules['tomllib'] = None  # as on Python 3.10\n"
        "try:\n    import tomllib\nexcept ImportError:\n    pass\nelse:\n    raise SystemExit('tomllib still importable')\n"
        "sys.argv = ['scripts/deploy.py', 'set-secret', '--given', 'CLIENT_ID']\n"
        "runpy.run_path('scripts/deploy.py', run_name='__main__')\n"
    )
    secret = "mnzconf." + secrets.token_urlsafe(8)
    result = subprocess.run(
        [sys.executable, "-c", runner],
        cwd=project,
        env=dict(os.environ, CLIENT_ID="oauth2client_tomli"),
        input=secret + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert stack_parameters(deployed)["MonzoClientId"] == "oauth2client_tomli", "the stack came from samconfig.toml"
