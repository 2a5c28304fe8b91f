#!/usr/bin/env python3
"""monzo-auth on AWS: `make deploy`, `make set-secret` and `make destroy`, with nothing to answer.

    make deploy [STACK=monzo-auth] [REGION=...] [ALLOWED_USER_IDS=user_...] [NO_BUILD=1] ...
    make set-secret                      # asks for the client id, then the secret (not shown)
    pass show monzo | make set-secret    # the secret from a pipe (the client id is still asked)
    make set-secret CLIENT_ID=oauth2client_... < secret.txt   # no terminal at all
    make destroy

`deploy` writes samconfig.toml itself (the stack, the region and the settings given as make
variables; a variable left out keeps its previous value, `NAME=` clears it), then runs `sam build`
(which copies what `make build` built) and a non-interactive `sam deploy`. samconfig.toml never holds
the Monzo client: `set-secret` sets the client id and the KMS ciphertext of the secret on the stack
itself, and SAM keeps a parameter's previous value for every key its overrides leave out.

Works on Python 3.10 and newer (tomllib, or tomli where it is missing).
"""

import argparse
import base64
import getpass
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

import boto3
from botocore.exceptions import ClientError, NoCredentialsError

SAMCONFIG = Path("samconfig.toml")
HEADER = "# Written by `make deploy` (scripts/deploy.py)."
DEFAULT_STACK = "monzo-auth"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
ENCRYPTION_CONTEXT = {"app": "monzo-auth"}

# Set on the stack by set-secret only; a deploy that sent them would overwrite them.
CLIENT_PARAMETERS = ("MonzoClientId", "MonzoClientSecretCiphertext")

# make variable -> template parameter.
SETTINGS = {
    "ALLOWED_USER_IDS": "AllowedUserIds",
    "RETURN_URL": "ReturnUrl",
    "CUSTOM_DOMAIN": "CustomDomainName",
    "CUSTOM_DOMAIN_CERTIFICATE": "CustomDomainCertificateArn",
    "THROTTLE_RATE": "ThrottleRateLimit",
    "THROTTLE_BURST": "ThrottleBurstLimit",
    "LOG_LEVEL": "LogLevel",
    "LOG_RETENTION_DAYS": "LogRetentionDays",
    "ALARM_EMAIL": "AlarmEmail",
    "KEY_ADMINISTRATOR": "KeyAdministratorArn",
}


class DeployError(Exception):
    """A one-line reason to stop, for the person at the terminal."""


# --- samconfig.toml ------------------------------------------------------------------------


def read_samconfig(path=SAMCONFIG):
    """The whole document, or {} when there is none."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}


def saved_parameters(doc, command="deploy"):
    return doc.get("default", {}).get(command, {}).get("parameters", {})


def parse_overrides(value):
    """SAM's `parameter_overrides` (`Key=Value Key="value"`, a string or a list of them)."""
    items = value if isinstance(value, list) else [value]
    overrides = {}
    for item in items:
        for token in shlex.split(item or ""):
            key, sep, val = token.partition("=")
            if not sep or not key:
                raise DeployError(f"samconfig.toml: cannot read parameter override {key!r}")
            overrides[key] = val
    return overrides


def check_value(parameter, value):
    if any(c.isspace() or c in "\"'\\" for c in value):
        raise DeployError(f"{parameter}: spaces, quotes and backslashes are not allowed")


def render_samconfig(stack, region, s3, overrides):
    """samconfig.toml for a non-interactive `sam build` and `sam deploy` (and `sam delete`)."""
    s = json.dumps  # a JSON string is a TOML basic string
    for key, value in overrides.items():
        check_value(key, value)
    override_text = " ".join(f'{key}="{value}"' for key, value in sorted(overrides.items()))
    lines = [
        HEADER,
        "# Change a setting with `make deploy NAME=value` (see the README); a setting left out keeps",
        "# its value. The Monzo client is not here: `make set-secret` sets it on the stack and every",
        "# deploy keeps it.",
        "version = 0.1",
        "",
        "[default.build.parameters]",
        "# sam build copies what `make build` built (the Makefile's build-<Function> targets).",
        "build_in_source = true",
        "",
        "[default.deploy.parameters]",
        f"stack_name = {s(stack)}",
        f"region = {s(region)}",
    ]
    if s3.get("s3_bucket"):
        lines.append(f"s3_bucket = {s(s3['s3_bucket'])}")
    else:
        lines.append("resolve_s3 = true")
    lines += [
        f"s3_prefix = {s(stack)}",
        f"capabilities = {s(' '.join(CAPABILITIES))}",
        "confirm_changeset = false",
        "fail_on_empty_changeset = false",
        f"parameter_overrides = {s(override_text)}",
        "",
        "[default.delete.parameters]",
        f"stack_name = {s(stack)}",
        f"region = {s(region)}",
        "no_prompts = true",
        "",
    ]
    return "\n".join(lines)


# --- AWS identities --------------------------------------------------------------------------


def real_iam_arn(arn, iam):
    """The IAM ARN a key policy can name for `arn`: an assumed role (what STS reports for IAM
    Identity Center and other role sessions) becomes its role's real ARN, path included."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise DeployError(f"KEY_ADMINISTRATOR: {arn!r} is not an ARN")
    service, resource = parts[2], parts[5]
    if service == "sts" and resource.startswith("assumed-role/"):
        role_name = resource.split("/")[1]
        return iam.get_role(RoleName=role_name)["Role"]["Arn"]
    if service == "iam" and (resource == "root" or resource.startswith(("user/", "role/"))):
        return arn
    raise DeployError(
        f"KEY_ADMINISTRATOR: {arn} is not an IAM user, role or account root (federated users "
        "cannot be named in a key policy)"
    )


def key_administrator(value, session):
    """`me` is whoever runs the deploy; anything else is an ARN to resolve."""
    if value == "me":
        value = session.client("sts").get_caller_identity()["Arn"]
    return real_iam_arn(value, session.client("iam"))


# --- commands --------------------------------------------------------------------------------


def standard_region():
    """The region the standard AWS configuration names (AWS_REGION, AWS_DEFAULT_REGION, the
    profile's config)."""
    return os.environ.get("AWS_REGION") or boto3.session.Session().region_name


def stack_and_region(doc, given):
    saved = saved_parameters(doc)
    stack = given.get("STACK") or saved.get("stack_name") or DEFAULT_STACK
    # A CloudFormation stack name that leaves room for the functions' names (<stack>-callback).
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,54}", stack):
        raise DeployError(f"STACK: {stack!r} is not a stack name (a letter, then up to 54 letters, digits or -)")
    region = given.get("REGION") or saved.get("region") or standard_region()
    if not region:
        raise DeployError(
            "no AWS region: pass REGION=... (e.g. make deploy REGION=eu-west-2) or set one with "
            "`aws configure set region eu-west-2`"
        )
    return stack, region


def stack_outputs(cloudformation, stack):
    described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])}
    return outputs, parameters


def find_stack(cloudformation, stack):
    try:
        return stack_outputs(cloudformation, stack)
    except ClientError as err:
        if "does not exist" in str(err):
            return None
        raise


def sam(*args):
    """Runs the SAM CLI that sits beside this Python (the deploy virtualenv's)."""
    command = [str(Path(sys.executable).parent / "sam"), *args]
    env = dict(os.environ, SAM_CLI_TELEMETRY="0")
    result = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        raise DeployError(f"`sam {args[0]}` failed (its output is above)")


def deploy(given):
    doc = read_samconfig()
    stack, region = stack_and_region(doc, given)
    saved = saved_parameters(doc)
    overrides = parse_overrides(saved.get("parameter_overrides", ""))
    dropped = [key for key in CLIENT_PARAMETERS if key in overrides]
    overrides = {key: value for key, value in overrides.items() if key not in CLIENT_PARAMETERS}
    session = boto3.session.Session(region_name=region)
    for variable, parameter in SETTINGS.items():
        if variable in given:
            value = given[variable]
            if variable == "KEY_ADMINISTRATOR" and value:
                value = key_administrator(value, session)
            overrides[parameter] = value

    text = render_samconfig(stack, region, saved, overrides)
    earlier = SAMCONFIG.exists() and not SAMCONFIG.read_text().startswith(HEADER)
    SAMCONFIG.write_text(text)
    if earlier:
        dropping = f"dropped {' and '.join(dropped)} (make set-secret keeps the client on the stack), " if dropped else ""
        print(
            f"make deploy: rewrote samconfig.toml (from sam deploy --guided): {dropping}kept the "
            "stack, the region and the other settings",
            file=sys.stderr,
        )

    print(f"Deploying stack {stack} in {region}...", file=sys.stderr)
    sam("build")
    sam("deploy")

    found = find_stack(session.client("cloudformation"), stack)
    outputs, parameters = found if found else ({}, {})
    print("", file=sys.stderr)
    print(f"monzo-auth is deployed: stack {stack} in {region}.", file=sys.stderr)
    if "ApiUrl" in outputs:
        print(f"  Service URL (give it to your apps): {outputs['ApiUrl']}", file=sys.stderr)
    if "CallbackUrl" in outputs:
        print(f"  Redirect URL to register for your Monzo client: {outputs['CallbackUrl']}", file=sys.stderr)
    if parameters.get("MonzoClientId"):
        print("The Monzo client is set (kept from before).", file=sys.stderr)
    else:
        url = "that redirect URL" if "CallbackUrl" in outputs else "the stack's CallbackUrl output"
        print(
            f"Next: register {url} at https://developers.monzo.com/ (a confidential client), "
            "then run: make set-secret",
            file=sys.stderr,
        )


def read_secret():
    if sys.stdin.isatty():
        return getpass.getpass("Monzo client secret (not shown): ")
    return sys.stdin.readline()


def ask(prompt):
    """A question on the terminal, also when stdin is a pipe (that carries the secret); "" when
    there is no terminal."""
    if sys.stdin.isatty():
        return input(prompt).strip()
    try:
        with open("/dev/tty", "r+") as tty:
            tty.write(prompt)
            tty.flush()
            return tty.readline().strip()
    except OSError:
        return ""


def existing_stack(given):
    """The stack STACK/REGION or samconfig.toml name: its name, region, an AWS session there, and
    its (outputs, parameters), or None when there is no such stack."""
    stack, region = stack_and_region(read_samconfig(), given)
    session = boto3.session.Session(region_name=region)
    return stack, region, session, find_stack(session.client("cloudformation"), stack)


def set_secret(given):
    stack, region, session, found = existing_stack(given)
    cloudformation = session.client("cloudformation")
    if found is None:
        raise DeployError(f"no stack {stack} in {region}: run `make deploy` first")
    outputs, current = found
    key_id = outputs.get("SecretKeyId")
    if not key_id:
        raise DeployError(f"stack {stack} has no SecretKeyId output; is it a monzo-auth stack?")
    if "CallbackUrl" in outputs:
        print(f"Your Monzo client's redirect URL must be: {outputs['CallbackUrl']}", file=sys.stderr)

    client_id = given.get("CLIENT_ID")
    if not client_id:
        shown = current.get("MonzoClientId", "")
        client_id = ask(f"Monzo client id [{shown}]: " if shown else "Monzo client id: ") or shown
    if not client_id:
        raise DeployError("no client id given (CLIENT_ID=... when there is no terminal); nothing changed")

    secret = read_secret().strip()
    if not secret:
        raise DeployError("no secret given; nothing changed")
    ciphertext = session.client("kms").encrypt(
        KeyId=key_id,
        Plaintext=secret.encode(),
        EncryptionContext=ENCRYPTION_CONTEXT,
    )["CiphertextBlob"]
    del secret

    changed = {
        "MonzoClientId": client_id,
        "MonzoClientSecretCiphertext": base64.b64encode(ciphertext).decode(),
    }
    parameters = [
        {"ParameterKey": key, "ParameterValue": changed[key]}
        if key in changed
        else {"ParameterKey": key, "UsePreviousValue": True}
        for key in current
    ]
    cloudformation.update_stack(
        StackName=stack,
        UsePreviousTemplate=True,
        Parameters=parameters,
        Capabilities=CAPABILITIES,
    )
    print(f"Updating stack {stack}...", file=sys.stderr)
    cloudformation.get_waiter("stack_update_complete").wait(
        StackName=stack, WaiterConfig={"Delay": 5, "MaxAttempts": 120}
    )
    print("Done: the client is set. Later `make deploy` runs keep it.", file=sys.stderr)


def destroy(given):
    stack, region, session, found = existing_stack(given)
    if found is None:
        print(f"No stack {stack} in {region}: nothing to delete.", file=sys.stderr)
        return
    key_id = found[0].get("SecretKeyId")
    sam("delete", "--stack-name", stack, "--region", region, "--no-prompts")
    # The key's DeletionPolicy schedules its deletion; a stack deployed before that policy kept
    # its key, so make sure here.
    if key_id:
        kms = session.client("kms")
        try:
            kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
        except (kms.exceptions.NotFoundException, kms.exceptions.KMSInvalidStateException):
            pass  # deleted with the stack, or already pending deletion
        print(f"The secret's KMS key {key_id} is deleted or scheduled for deletion.", file=sys.stderr)
    print(
        f"Deleted stack {stack} in {region}. Left: SAM's artefact bucket (stack "
        "aws-sam-cli-managed-default, shared by every SAM app of this account and region; "
        "delete that stack if you have no other) and samconfig.toml here.",
        file=sys.stderr,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["deploy", "set-secret", "destroy"])
    parser.add_argument(
        "--given",
        action="append",
        default=[],
        metavar="VARIABLE",
        help="a make variable given on make's command line (its value is in the environment)",
    )
    args = parser.parse_args(argv)
    given = {name: os.environ.get(name, "") for name in args.given}
    try:
        if args.command == "deploy":
            deploy(given)
        elif args.command == "set-secret":
            set_secret(given)
        else:
            destroy(given)
    except DeployError as err:
        print(f"make {args.command}: {err}", file=sys.stderr)
        return 1
    except NoCredentialsError:
        print(
            f"make {args.command}: no AWS credentials: run `aws configure` (or `aws sso login` "
            "with AWS_PROFILE set)",
            file=sys.stderr,
        )
        return 1
    except ClientError as err:
        print(f"make {args.command}: AWS refused: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
