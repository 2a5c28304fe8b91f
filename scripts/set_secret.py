#!/usr/bin/env python3
"""Sets the Monzo OAuth client on a deployed monzo-auth stack, in one go.

Asks for the client id (shown) and the client secret (read without echo, or from a pipe; never
from the command line, where `ps` and shell history would keep it), encrypts the secret with the
stack's own KMS key under the encryption context app=monzo-auth, and updates the stack's
parameters on its current template. Nothing is written to disk.

    make set-secret                      # stack and region from samconfig.toml
    pass show monzo | make set-secret    # the secret from a password manager, no prompt

`--print-caller-arn` prints the IAM ARN of the current AWS credentials (the key administrator
`make deploy` proposes).
"""

import argparse
import base64
import getpass
import os
import sys
import tomllib

import boto3

ENCRYPTION_CONTEXT = {"app": "monzo-auth"}
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]


def samconfig_defaults(path="samconfig.toml"):
    """The stack name and region `sam deploy --guided` saved, if any."""
    try:
        with open(path, "rb") as f:
            params = tomllib.load(f).get("default", {}).get("deploy", {}).get("parameters", {})
    except FileNotFoundError:
        return None, None
    return params.get("stack_name"), params.get("region")


def caller_arn(session):
    """The IAM ARN behind the credentials; an assumed role becomes its role's ARN."""
    arn = session.client("sts").get_caller_identity()["Arn"]
    parts = arn.split(":")
    if parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        role = parts[5].split("/")[1]
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{role}"
    return arn


def read_secret():
    if sys.stdin.isatty():
        return getpass.getpass("Monzo client secret (not shown): ")
    return sys.stdin.readline()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack-name")
    parser.add_argument("--region")
    parser.add_argument("--client-id", help="the Monzo client id (asked for when omitted)")
    parser.add_argument("--print-caller-arn", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    saved_stack, saved_region = samconfig_defaults()
    region = args.region or saved_region or os.environ.get("AWS_REGION")
    session = boto3.session.Session(region_name=region)
    if args.print_caller_arn:
        print(caller_arn(session))
        return 0
    stack_name = args.stack_name or saved_stack
    if not stack_name:
        sys.exit("set-secret: no stack: run `make deploy` first (it writes samconfig.toml), or pass --stack-name")

    cloudformation = session.client("cloudformation")
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    current = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    key_id = outputs.get("SecretKeyId")
    if not key_id:
        sys.exit(f"set-secret: stack {stack_name} has no SecretKeyId output; is it a monzo-auth stack?")
    if "CallbackUrl" in outputs:
        print(f"Your Monzo client's redirect URL must be: {outputs['CallbackUrl']}", file=sys.stderr)

    client_id = args.client_id
    if client_id is None:
        shown = current.get("MonzoClientId", "")
        if sys.stdin.isatty():
            answer = input(f"Monzo client id [{shown}]: " if shown else "Monzo client id: ").strip()
        else:
            answer = ""
        client_id = answer or shown
    if not client_id:
        sys.exit("set-secret: no client id given; nothing changed")

    secret = read_secret().strip()
    if not secret:
        sys.exit("set-secret: no secret given; nothing changed")
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
        StackName=stack_name,
        UsePreviousTemplate=True,
        Parameters=parameters,
        Capabilities=CAPABILITIES,
    )
    print(f"Updating stack {stack_name}...", file=sys.stderr)
    cloudformation.get_waiter("stack_update_complete").wait(
        StackName=stack_name, WaiterConfig={"Delay": 5, "MaxAttempts": 120}
    )
    print("Done: the client is set. Later `make deploy` runs keep it.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
