"""A deployment's life as its owner lives it: the first `make deploy`, `make set-secret`, later
`make deploy` runs that change settings, `make destroy`. The make targets, scripts/deploy.py and
the SAM CLI run for real against moto; see conftest.py for what moto cannot model and how the tests
stand in for it (the SAM transform)."""

import base64
import json
import re
import secrets

import boto3
import pytest
from samcli.cli.types import CfnParameterOverridesType
from samcli.commands.deploy.deploy_context import DeployContext
from samcli.lib.bootstrap.bootstrap import SAM_CLI_STACK_NAME
from samcli.lib.config.samconfig import SamConfig

from conftest import (
    FUNCTIONS,
    REGION,
    create_transformed_stack,
    current_template,
    function_environments,
    make,
    packaged_template,
    stack_parameters,
    stack_resources,
    template_parameters,
)

CLIENT_ID = "oauth2client_00009abcDEF"
ADMIN = "arn:aws:iam::123456789012:user/admin"

# What `sam deploy --guided` saved before `make deploy` wrote the file itself: every prompted
# parameter that is not NoEcho, the empty client id included.
GUIDED_ERA = """version = 0.1
[default]
[default.deploy]
[default.deploy.parameters]
stack_name = "{stack}"
resolve_s3 = true
s3_prefix = "{stack}"
region = "eu-west-2"
confirm_changeset = true
capabilities = "CAPABILITY_IAM CAPABILITY_AUTO_EXPAND"
parameter_overrides = "MonzoClientId=\\"\\" KeyAdministratorArn=\\"{admin}\\" ReturnUrl=\\"\\" AllowedUserIds=\\"\\" CustomDomainName=\\"\\" CustomDomainCertificateArn=\\"\\" LogRetentionDays=\\"14\\""
image_repositories = []
"""


def sam_merged_parameters(project, stack_name):
    """What SAM CLI's own code sends for a plain `sam deploy` with this project's samconfig.toml:
    its config reader, its parameter-override parser and its merge (previous value for every key
    the overrides leave out)."""
    config = SamConfig(config_dir=str(project), filename="samconfig.toml")
    saved = config.get_all(["deploy"], "parameters", "default")
    overrides = CfnParameterOverridesType().convert(saved.get("parameter_overrides", ""), None, None)
    merged = DeployContext.merge_parameters(current_template(stack_name), overrides)
    return {p["ParameterKey"]: p for p in merged}


def lifecycle(project, stack, start):
    """First deploy, set-secret, then an upgrade that changes a setting; returns nothing, asserts
    that the upgrade kept the client."""
    secret = "mnzconf." + secrets.token_urlsafe(24)

    # The first `make deploy`, as CloudFormation builds it (moto cannot run the transform).
    template = packaged_template(project)
    first = template_parameters(template)
    if start == "guided-era":
        (project / "samconfig.toml").write_text(GUIDED_ERA.format(stack=stack, admin=ADMIN))
        first.update(KeyAdministratorArn=ADMIN, LogRetentionDays="14")
    create_transformed_stack(stack, template, first)
    key_id = stack_resources(stack)["SecretKey"]["PhysicalResourceId"]

    # `make set-secret`: the client id given, the secret from a pipe.
    done = make(project, "set-secret", f"STACK={stack}", f"CLIENT_ID={CLIENT_ID}", stdin_text=secret + "\n")
    assert done.returncode == 0, done.output
    assert secret not in done.output
    ciphertext = stack_parameters(stack)["MonzoClientSecretCiphertext"]
    assert ciphertext and secret not in ciphertext

    # A later `make deploy` that changes a setting, as the README recommends.
    done = make(project, "deploy", "NO_BUILD=1", f"STACK={stack}", "ALLOWED_USER_IDS=user_0000abc")
    assert done.returncode == 0, done.output
    assert "Redirect URL to register for your Monzo client" in done.output, done.output
    assert "The Monzo client is set (kept from before)." in done.output, done.output
    rewrites = [line for line in done.output.splitlines() if "rewrote samconfig.toml" in line]
    assert len(rewrites) == (1 if start == "guided-era" else 0), done.output

    # (a) samconfig.toml holds neither the client id nor the ciphertext.
    written = (project / "samconfig.toml").read_text()
    for held in ("MonzoClientId", "MonzoClientSecretCiphertext", CLIENT_ID, ciphertext):
        assert held not in written, f"samconfig.toml holds {held}:\n{written}"

    # (b) SAM CLI's own merge, given that file and the stack, keeps the previous values for both
    # (it ran for real in `sam deploy`, and moto resolved it: the stack still has them).
    merged = sam_merged_parameters(project, stack)
    for key in ("MonzoClientId", "MonzoClientSecretCiphertext"):
        assert merged[key] == {"ParameterKey": key, "UsePreviousValue": True}, merged[key]
    after = stack_parameters(stack)
    assert after["MonzoClientId"] == CLIENT_ID
    assert after["MonzoClientSecretCiphertext"] == ciphertext
    assert after["AllowedUserIds"] == "user_0000abc"
    if start == "guided-era":
        assert after["KeyAdministratorArn"] == ADMIN, "the migration keeps the other settings"
        assert after["LogRetentionDays"] == "14"

    # (c) What CloudFormation builds from the deployed template with those parameters: the client
    # in every function that needs it, the secret's ciphertext only in token, the key the same.
    resolved = stack + "-built"
    create_transformed_stack(resolved, current_template(stack), after)
    env = function_environments(resolved)
    for short in FUNCTIONS.values():
        assert env[short].get("MONZO_CLIENT_ID") == CLIENT_ID, (short, env[short])
    assert env["token"]["MONZO_CLIENT_SECRET_KMS"] == ciphertext
    assert "MONZO_CLIENT_SECRET_KMS" not in env["new"] and "MONZO_CLIENT_SECRET_KMS" not in env["callback"]
    assert env["token"]["ALLOWED_USER_IDS"] == "user_0000abc"
    assert stack_resources(stack)["SecretKey"]["PhysicalResourceId"] == key_id, "the key was replaced"
    plain = boto3.client("kms").decrypt(
        CiphertextBlob=base64.b64decode(ciphertext), EncryptionContext={"app": "monzo-auth"}
    )
    assert plain["Plaintext"] == secret.encode()
    assert plain["KeyId"].endswith(key_id)

    # Another deploy that gives nothing keeps everything; `NAME=` clears a setting.
    done = make(project, "deploy", "NO_BUILD=1")
    assert done.returncode == 0, done.output
    assert stack_parameters(stack)["AllowedUserIds"] == "user_0000abc"
    done = make(project, "deploy", "NO_BUILD=1", "ALLOWED_USER_IDS=")
    assert done.returncode == 0, done.output
    last = stack_parameters(stack)
    assert last["AllowedUserIds"] == ""
    assert (last["MonzoClientId"], last["MonzoClientSecretCiphertext"]) == (CLIENT_ID, ciphertext)


@pytest.mark.parametrize("start", ["fresh", "guided-era"])
def test_upgrades_keep_the_client(project, stack, start):
    lifecycle(project, stack, start)


def test_a_deploy_that_wrote_the_empty_client_id_back_would_fail(project, stack):
    """The lifecycle check has teeth: a deploy script that writes MonzoClientId="" into
    samconfig.toml (what `sam deploy --guided` did) fails it."""
    script = project / "scripts" / "deploy.py"
    text = script.read_text()
    keep = "    overrides = {key: value for key, value in overrides.items() if key not in CLIENT_PARAMETERS}\n"
    assert keep in text, "the mutation point moved: update this test"
    script.write_text(text.replace(keep, keep + '    overrides["MonzoClientId"] = ""\n'))
    with pytest.raises(AssertionError):
        lifecycle(project, stack, "fresh")


def test_a_first_deploy_asks_nothing_and_says_what_comes_next(project, stack):
    done = make(project, "deploy", "NO_BUILD=1", f"STACK={stack}")  # stdin closed, no terminal
    assert done.returncode == 0, done.output
    # Any question would have met the closed stdin and failed the command; none was printed either.
    assert not re.search(r"\[y/N\]|\[Y/n\]|Confirm changeset\s*:\s*True|Parameter \w+ \[", done.output)
    # (moto cannot run the transform, so the stack has no outputs to print URLs from)
    assert "Next: register the stack's CallbackUrl output" in done.output and "make set-secret" in done.output

    # samconfig.toml, written by make deploy: the stack, the region from the standard AWS
    # configuration (AWS_DEFAULT_REGION here), SAM's managed bucket, no changeset to confirm.
    saved = SamConfig(config_dir=str(project), filename="samconfig.toml").get_all(["deploy"], "parameters")
    assert saved["stack_name"] == stack
    assert saved["region"] == REGION
    assert saved["resolve_s3"] is True and saved["confirm_changeset"] is False
    assert "MonzoClient" not in (project / "samconfig.toml").read_text()

    # sam build copied what make build left (the one build path), and sam deploy shipped it to the
    # managed bucket; the stack exists with the template's parameters (moto: no resources).
    for short in FUNCTIONS.values():
        shipped = project / ".aws-sam" / "build" / f"{short.capitalize()}Function" / "bootstrap"
        assert f"stand-in for monzo-auth-{short}" in shipped.read_text()
    bucket = boto3.client("cloudformation").describe_stacks(StackName=SAM_CLI_STACK_NAME)["Stacks"][0]["Outputs"][0][
        "OutputValue"
    ]
    uploaded = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"{stack}/").get("KeyCount", 0)
    assert uploaded >= 2, "the code and the template"
    assert stack_parameters(stack)["MonzoClientId"] == ""


def test_a_region_can_be_named_and_settings_left_out_keep_their_values(project, stack):
    template = packaged_template(project)
    create_transformed_stack(stack, template, template_parameters(template))
    done = make(project, "deploy", "NO_BUILD=1", f"STACK={stack}", "REGION=eu-west-2", "THROTTLE_RATE=5")
    assert done.returncode == 0, done.output
    done = make(project, "deploy", "NO_BUILD=1", "THROTTLE_BURST=7", "LOG_LEVEL=DEBUG")
    assert done.returncode == 0, done.output
    parameters = stack_parameters(stack)
    assert (parameters["ThrottleRateLimit"], parameters["ThrottleBurstLimit"]) == ("5", "7")
    assert parameters["LogLevel"] == "DEBUG"


def test_a_setting_with_spaces_is_refused_before_anything_runs(project, stack):
    done = make(project, "deploy", "NO_BUILD=1", f"STACK={stack}", "ALLOWED_USER_IDS=user_1 user_2")
    assert done.returncode != 0
    assert "AllowedUserIds: spaces, quotes and backslashes are not allowed" in done.output
    assert not (project / "samconfig.toml").exists()


def test_destroy_deletes_the_stack_and_leaves_no_key(project, stack):
    template = packaged_template(project)
    create_transformed_stack(stack, template, template_parameters(template))
    resources = stack_resources(stack)
    key_id = resources["SecretKey"]["PhysicalResourceId"]
    log_group = resources["TokenFunctionLogs"]["PhysicalResourceId"]
    assert log_group == f"/aws/lambda/{stack}-token"

    done = make(project, "destroy", f"STACK={stack}", f"REGION={REGION}")
    assert done.returncode == 0, done.output
    assert "aws-sam-cli-managed-default" in done.output, "it says what is left"
    assert_gone(stack, key_id)
    groups = boto3.client("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{stack}-")["logGroups"]
    assert groups == [], "the log groups go with the stack"


def test_destroy_schedules_the_key_a_stack_from_before_retained(project, stack):
    """Stacks deployed before the key's DeletionPolicy was Delete kept their key on deletion."""
    template = packaged_template(project)
    template["Resources"]["SecretKey"]["DeletionPolicy"] = "Retain"
    create_transformed_stack(stack, template, template_parameters(template))
    key_id = stack_resources(stack)["SecretKey"]["PhysicalResourceId"]
    done = make(project, "destroy", f"STACK={stack}", f"REGION={REGION}")
    assert done.returncode == 0, done.output
    assert_gone(stack, key_id)
    assert key_state(key_id) == "PendingDeletion"


def assert_gone(stack, key_id):
    cloudformation = boto3.client("cloudformation")
    try:
        status = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    except cloudformation.exceptions.ClientError:
        status = "gone"
    assert status in ("gone", "DELETE_COMPLETE"), status
    assert key_state(key_id) in ("gone", "PendingDeletion")


def key_state(key_id):
    """The key's state, or "gone". moto keeps the policy of a key CloudFormation made as an object
    and then fails DescribeKey on it, so the policy is put back as text first."""
    kms = boto3.client("kms")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"}],
    }
    try:
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))
        return kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]
    except kms.exceptions.NotFoundException:
        return "gone"


def test_destroy_without_a_stack_changes_nothing(project, stack):
    done = make(project, "destroy", f"STACK={stack}", f"REGION={REGION}")
    assert done.returncode == 0, done.output
    assert f"No stack {stack}" in done.output
