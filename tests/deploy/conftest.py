"""The deploy path's tests: `make deploy`, `make set-secret` and `make destroy` (scripts/deploy.py)
run for real, with the real SAM CLI, against moto_server (started by `make test`, its endpoint in
MOTO_ENDPOINT). Nothing reaches AWS: fake credentials, a loopback endpoint, no instance metadata,
a throwaway HOME, SAM's telemetry and version check off.

moto cannot run the SAM transform: a stack created from template.yaml as it is gets its parameters
but no resources. Where a test needs what CloudFormation would build, it runs AWS's own SAM
translator (PyPI aws-sam-translator, the library CloudFormation's transform uses) and creates the
plain CloudFormation in moto, which builds everything but the API Gateway v2 resources.
"""

import copy
import importlib.util
import json
import os
import secrets
import shutil
import string
import subprocess
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

REPO = Path(__file__).resolve().parents[2]
DEPLOY_VENV = REPO / ".venv-deploy"
REGION = "eu-west-2"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
FUNCTIONS = {"NewFunction": "new", "CallbackFunction": "callback", "TokenFunction": "token"}


def load_deploy_module():
    spec = importlib.util.spec_from_file_location("deploy", REPO / "scripts" / "deploy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def moto_endpoint():
    endpoint = os.environ.get("MOTO_ENDPOINT")
    if not endpoint:
        pytest.fail("MOTO_ENDPOINT is not set: run the tests with `make test`, which starts moto_server")
    # SAM hands CloudFormation the template as an S3 URL built from the endpoint; moto finds the
    # bucket in such a URL's path only when the host is "localhost" (still loopback).
    return endpoint.replace("127.0.0.1", "localhost")


@pytest.fixture(scope="session", autouse=True)
def aws_env(tmp_path_factory):
    """Points every AWS client, in this process and in the commands it runs, at moto only."""
    home = tmp_path_factory.mktemp("home")
    (home / ".aws-sam").mkdir()
    (home / ".aws-sam" / "metadata.json").write_text(
        json.dumps({"telemetryEnabled": False, "lastVersionCheck": 4102444800.0})
    )
    for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        os.environ.pop(variable, None)
    env = {
        "AWS_ENDPOINT_URL": moto_endpoint(),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "SAM_CLI_TELEMETRY": "0",
        "HOME": str(home),
    }
    os.environ.update(env)
    ensure_sam_managed_stack()
    return env


def ensure_sam_managed_stack():
    """SAM's artefact bucket stack, made as `sam deploy --resolve-s3` makes it (its template
    carries the SAM transform, which moto cannot run: without this moto would give the stack no
    outputs and SAM would refuse it)."""
    from samcli.lib.bootstrap.bootstrap import SAM_CLI_STACK_NAME, _get_stack_template

    cloudformation = boto3.client("cloudformation")
    try:
        cloudformation.describe_stacks(StackName=SAM_CLI_STACK_NAME)
        return
    except ClientError:
        pass
    template = _get_stack_template()
    template = json.loads(template) if isinstance(template, str) else template
    template.pop("Transform", None)
    cloudformation.create_stack(
        StackName=SAM_CLI_STACK_NAME,
        TemplateBody=json.dumps(template),
        Tags=[{"Key": "ManagedStackSource", "Value": "AwsSamCli"}],
    )


def random_name(prefix):
    return prefix + "".join(secrets.choice(string.ascii_lowercase) for _ in range(8))


@pytest.fixture
def stack():
    return random_name("ma-")


@pytest.fixture
def project(tmp_path):
    """A copy of what `make deploy` reads (the template, the Makefile, the scripts), with stand-in
    function binaries where `make build` leaves them: the tests run `make deploy NO_BUILD=1`
    (no release build in `make test`)."""
    root = tmp_path / "project"
    root.mkdir()
    for name in ("template.yaml", "Makefile", "requirements-deploy.txt"):
        shutil.copy2(REPO / name, root / name)
    shutil.copytree(REPO / "scripts", root / "scripts")
    for binary in FUNCTIONS.values():
        built = root / "target" / "lambda" / f"monzo-auth-{binary}"
        built.mkdir(parents=True)
        (built / "bootstrap").write_text(f"#!/bin/sh\n# stand-in for monzo-auth-{binary}\n")
    return root


def make(project, target, *variables, stdin_text=None, env=None):
    """Runs `make TARGET` in `project` as a person would, but with no terminal: stdin is closed
    (or carries `stdin_text`) and the command has no controlling terminal to ask on."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(project), target, f"DEPLOY_VENV={DEPLOY_VENV}", *variables],
        input=stdin_text,
        stdin=subprocess.DEVNULL if stdin_text is None else None,
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,
        env=env,
    )
    result.output = result.stdout + result.stderr
    return result


def stack_parameters(name):
    described = boto3.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in described["Parameters"]}


def stack_resources(name):
    summaries = boto3.client("cloudformation").list_stack_resources(StackName=name)["StackResourceSummaries"]
    return {r["LogicalResourceId"]: r for r in summaries if r["LogicalResourceId"]}


def template_parameters(template):
    return {key: str(spec.get("Default", "")) for key, spec in template["Parameters"].items()}


def packaged_template(project):
    """The template `sam deploy` hands CloudFormation for `project`: built by the real `sam build`
    (which copies the stand-in binaries and marks each resource) and packaged by `sam package`
    into a fresh bucket."""
    bucket = random_name("code-")
    boto3.client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    sam = str(DEPLOY_VENV / "bin" / "sam")
    env = dict(os.environ, NO_BUILD="1")
    for command in (
        [sam, "build", "--build-in-source"],
        [sam, "package", "--s3-bucket", bucket, "--region", REGION, "--output-template-file", "packaged.yaml"],
    ):
        done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    return yaml_parse((project / "packaged.yaml").read_text())


def sam_transform(template, parameters):
    """What CloudFormation's AWS::Serverless transform makes of `template`: AWS's own translator."""
    return transform(copy.deepcopy(template), parameters, ManagedPolicyLoader(boto3.client("iam")))


def create_transformed_stack(name, template, parameters):
    """Creates `name` in moto from the SAM translator's output for `template`, every parameter
    given explicitly (as CloudFormation resolves them)."""
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=json.dumps(sam_transform(template, parameters)),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=CAPABILITIES,
    )
    status = cloudformation.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
    assert status == "CREATE_COMPLETE", status


def current_template(name):
    body = boto3.client("cloudformation").get_template(StackName=name)["TemplateBody"]
    return yaml_parse(body) if isinstance(body, str) else json.loads(json.dumps(body))


def function_environments(stack_name):
    """Each function's environment variables, by its short name (new, callback, token)."""
    lambda_ = boto3.client("lambda")
    return {
        short: lambda_.get_function_configuration(FunctionName=f"{stack_name}-{short}")
        .get("Environment", {})
        .get("Variables", {})
        for short in FUNCTIONS.values()
    }
