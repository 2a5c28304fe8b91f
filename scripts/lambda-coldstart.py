#!/usr/bin/env python3
"""Cold-start figures for the Lambda bootstraps against a bare lambda_http function, in one run:
creates the sessions table and a KMS-encrypted client secret in the moto_server at MOTO_ENDPOINT,
then runs ../shared/bench/lambda_init.py (its README) with the functions' settings. Run it under
scripts/with-moto, after `make build` and ../shared/bench/setup.sh (for lambda-baseline):

  scripts/with-moto .venv/bin/python scripts/lambda-coldstart.py -n 30 \\
      new=target/lambda/monzo-auth-new/bootstrap@../shared/bench/lambda-events/get_new.json ...

Arguments go to lambda_init.py as they are. Loopback only.
"""

import base64
import os
import subprocess
import sys

import boto3

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "bench")
BASELINE = os.environ.get("BASELINE", "/tmp/perf-anchors/target/release/lambda-baseline")


def main():
    endpoint = os.environ["MOTO_ENDPOINT"]
    aws = dict(
        endpoint_url=endpoint,
        region_name="eu-west-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    boto3.client("dynamodb", **aws).create_table(
        TableName="bench-sessions",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    kms = boto3.client("kms", **aws)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(
        KeyId=key, Plaintext=b"bench-secret", EncryptionContext={"app": "monzo-auth"}
    )["CiphertextBlob"]
    settings = {
        "TABLE_NAME": "bench-sessions",
        "MONZO_CLIENT_SECRET_KMS": base64.b64encode(blob).decode(),
        "MONZO_CLIENT_ID": "oauth2client_bench",
        "MONZO_AUTH_URL": "http://127.0.0.1:9/",
        "MONZO_API_URL": "http://127.0.0.1:9",
    }
    command = [sys.executable, os.path.join(BENCH, "lambda_init.py"), "--baseline", BASELINE]
    command += ["--endpoint-url", endpoint]
    for name, value in settings.items():
        command += ["-e", f"{name}={value}"]
    sys.exit(subprocess.call(command + sys.argv[1:]))


if __name__ == "__main__":
    main()
