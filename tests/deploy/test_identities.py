"""The key's optional extra administrator (`make deploy KEY_ADMINISTRATOR=...`) is resolved to an
ARN a key policy can name: an IAM user, a role with its path (IAM Identity Center permission sets
live under role/aws-reserved/sso.amazonaws.com/...), or the account root. Recorded STS and IAM
answers first, then a role with a path made in moto's IAM and assumed through moto's STS."""

import json
import re

import boto3
import pytest
from botocore.stub import Stubber
from samtranslator.yaml_helper import yaml_parse

from conftest import REPO, load_deploy_module, make, random_name, stack_parameters

deploy = load_deploy_module()

SSO_ROLE = "AWSReservedSSO_AdministratorAccess_0123456789abcdef"
SSO_ROLE_ARN = f"arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/eu-west-2/{SSO_ROLE}"


def allowed_pattern():
    template = yaml_parse((REPO / "template.yaml").read_text())
    return re.compile(template["Parameters"]["KeyAdministratorArn"]["AllowedPattern"])


def recorded_iam(get_role=None):
    """An IAM client that answers only what was recorded (and fails on anything else)."""
    iam = boto3.client("iam")
    stubber = Stubber(iam)
    if get_role:
        name, arn = get_role
        stubber.add_response(
            "get_role",
            {
                "Role": {
                    "Path": arn.split(":role", 1)[1].rsplit("/", 1)[0] + "/",
                    "RoleName": name,
                    "RoleId": "AROAEXAMPLEID0000001",
                    "Arn": arn,
                    "CreateDate": "2026-01-01T00:00:00Z",
                }
            },
            {"RoleName": name},
        )
    stubber.activate()
    return iam, stubber


@pytest.mark.parametrize(
    "caller, real, asks_iam",
    [
        ("arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/alice", False),
        ("arn:aws:iam::123456789012:user/team/bob", "arn:aws:iam::123456789012:user/team/bob", False),
        ("arn:aws:iam::123456789012:root", "arn:aws:iam::123456789012:root", False),
        (f"arn:aws:sts::123456789012:assumed-role/{SSO_ROLE}/alice@example.com", SSO_ROLE_ARN, True),
    ],
)
def test_recorded_identities_resolve_to_arns_the_key_policy_accepts(caller, real, asks_iam):
    iam, stubber = recorded_iam((SSO_ROLE, SSO_ROLE_ARN) if asks_iam else None)
    assert deploy.real_iam_arn(caller, iam) == real
    stubber.assert_no_pending_responses()
    assert allowed_pattern().fullmatch(real), f"template.yaml's AllowedPattern refuses {real}"


def test_an_empty_administrator_is_allowed_and_federated_users_are_refused():
    assert allowed_pattern().fullmatch("")
    iam, _ = recorded_iam()
    with pytest.raises(deploy.DeployError, match="federated"):
        deploy.real_iam_arn("arn:aws:sts::123456789012:federated-user/alice", iam)
    with pytest.raises(deploy.DeployError, match="not an ARN"):
        deploy.real_iam_arn("alice", iam)


def test_me_is_whoever_runs_the_deploy():
    session = boto3.session.Session()
    sts = session.client("sts")
    with Stubber(sts) as stubbed:
        stubbed.add_response(
            "get_caller_identity",
            {
                "UserId": "AROAEXAMPLEID0000001:alice@example.com",
                "Account": "123456789012",
                "Arn": f"arn:aws:sts::123456789012:assumed-role/{SSO_ROLE}/alice@example.com",
            },
        )
        iam, _ = recorded_iam((SSO_ROLE, SSO_ROLE_ARN))

        class Session:
            def client(self, name):
                return {"sts": sts, "iam": iam}[name]

        assert deploy.key_administrator("me", Session()) == SSO_ROLE_ARN


def sso_role_in_moto():
    iam = boto3.client("iam")
    name = random_name("AWSReservedSSO_Admin_")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(
        RoleName=name,
        Path="/aws-reserved/sso.amazonaws.com/eu-west-2/",
        AssumeRolePolicyDocument=json.dumps(trust),
    )["Role"]
    return name, role["Arn"]


def test_a_role_with_a_path_assumed_in_moto_resolves_to_its_real_arn():
    name, arn = sso_role_in_moto()
    assert "/aws-reserved/sso.amazonaws.com/" in arn
    credentials = boto3.client("sts").assume_role(RoleArn=arn, RoleSessionName="alice")["Credentials"]
    session = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    caller = session.client("sts").get_caller_identity()["Arn"]
    assert caller.startswith("arn:aws:sts::") and f"assumed-role/{name}/alice" in caller
    assert deploy.key_administrator("me", session) == arn


def test_make_deploy_names_the_resolved_administrator(project, stack):
    name, arn = sso_role_in_moto()
    assumed = f"arn:aws:sts::123456789012:assumed-role/{name}/alice"
    done = make(project, "deploy", "NO_BUILD=1", f"STACK={stack}", f"KEY_ADMINISTRATOR={assumed}")
    assert done.returncode == 0, done.output
    assert stack_parameters(stack)["KeyAdministratorArn"] == arn
