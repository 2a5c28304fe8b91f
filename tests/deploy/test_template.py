"""template.yaml as CloudFormation sees it (through AWS's own SAM translator): what a deployment is
made of, checked structurally, and where moto can build it, built. The token function's time
budget is checked in Rust (tests/e2e/lambda.rs), beside the timeouts it is worked out from."""

import pytest
from samtranslator.yaml_helper import yaml_parse

from conftest import (
    FUNCTIONS,
    REPO,
    create_transformed_stack,
    packaged_template,
    sam_transform,
    stack_resources,
    template_parameters,
)

NO_VALUE = object()


def translated(**parameters):
    template = yaml_parse((REPO / "template.yaml").read_text())
    template["Globals"]["Function"]["CodeUri"] = "s3://code/code.zip"
    values = template_parameters(template)
    values.update(parameters)
    return sam_transform(template, values), values


def evaluate(node, template, values):
    """Resolves Ref (parameters), Fn::If, Fn::Equals, Fn::Not and AWS::NoValue, as CloudFormation
    does once the parameters are known; leaves every other function as it is."""

    def condition(name):
        return evaluate(template["Conditions"][name], template, values)

    if isinstance(node, dict) and len(node) == 1:
        ((function, argument),) = node.items()
        if function == "Ref" and argument == "AWS::NoValue":
            return NO_VALUE
        if function == "Ref" and argument in values:
            return values[argument]
        if function == "Fn::Equals":
            left, right = (evaluate(x, template, values) for x in argument)
            return left == right
        if function == "Fn::Not":
            return not evaluate(argument[0], template, values)
        if function == "Fn::If":
            name, then, otherwise = argument
            return evaluate(then if condition(name) else otherwise, template, values)
    if isinstance(node, dict):
        resolved = {key: evaluate(value, template, values) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not NO_VALUE}
    if isinstance(node, list):
        return [v for v in (evaluate(x, template, values) for x in node) if v is not NO_VALUE]
    return node


def resources(template, values, kind):
    """The resources of `kind` that exist with these parameters, evaluated."""
    found = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] != kind:
            continue
        if "Condition" in resource and not evaluate(template["Conditions"][resource["Condition"]], template, values):
            continue
        found[name] = evaluate(resource, template, values)
    return found


def test_the_key_is_deleted_with_the_stack_and_never_replaced():
    template, values = translated()
    key = template["Resources"]["SecretKey"]
    assert key["DeletionPolicy"] == "Delete", "a deleted stack (or a failed first create) leaves no key"
    # Only properties CloudFormation updates in place: reworking the key must never replace it
    # (the ciphertext on the stack would no longer decrypt). KeySpec, KeyUsage, MultiRegion and
    # Origin would.
    assert set(key["Properties"]) <= {"Description", "EnableKeyRotation", "PendingWindowInDays", "KeyPolicy", "Enabled", "Tags"}


@pytest.mark.parametrize("administrator", ["", "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/eu-west-2/X"])
def test_the_account_governs_the_key_and_an_extra_administrator_is_optional(administrator):
    template, values = translated(KeyAdministratorArn=administrator)
    policy = resources(template, values, "AWS::KMS::Key")["SecretKey"]["Properties"]["KeyPolicy"]
    statements = {s["Sid"]: s for s in policy["Statement"]}
    root = statements["EnableIamPolicies"]
    assert root["Action"] == "kms:*" and root["Principal"]["AWS"] == {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
    named = {s["Principal"]["AWS"] for sid, s in statements.items() if sid != "EnableIamPolicies"}
    assert named == ({administrator} if administrator else set())


def test_functions_log_json_at_the_chosen_level_to_groups_named_after_them():
    template, values = translated(LogLevel="TRACE")
    functions = resources(template, values, "AWS::Lambda::Function")
    groups = resources(template, values, "AWS::Logs::LogGroup")
    assert set(functions) == set(FUNCTIONS)
    for name, short in FUNCTIONS.items():
        properties = functions[name]["Properties"]
        logging = properties["LoggingConfig"]
        assert logging["LogFormat"] == "JSON"
        assert logging["ApplicationLogLevel"] == "TRACE"
        group = groups[logging["LogGroup"]["Ref"]]["Properties"]
        assert properties["FunctionName"] == {"Fn::Sub": f"${{AWS::StackName}}-{short}"}
        assert group["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}-{short}"}
    levels = yaml_parse((REPO / "template.yaml").read_text())["Parameters"]["LogLevel"]["AllowedValues"]
    assert "TRACE" in levels, "tests/e2e/lambda.rs checks the logs at TRACE, the most verbose level"


def test_alarms_exist_only_with_an_alarm_email():
    template, values = translated()
    for kind in ("AWS::SNS::Topic", "AWS::CloudWatch::Alarm"):
        assert resources(template, values, kind) == {}
    template, values = translated(AlarmEmail="me@example.com")
    (topic,) = resources(template, values, "AWS::SNS::Topic").values()
    assert topic["Properties"]["Subscription"] == [{"Protocol": "email", "Endpoint": "me@example.com"}]
    alarms = resources(template, values, "AWS::CloudWatch::Alarm")
    watched = {(a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms.values()}
    assert watched == {("AWS/Lambda", "Errors"), ("AWS/ApiGateway", "5xx")}
    functions = {a["Properties"]["Dimensions"][0]["Value"]["Ref"] for a in alarms.values() if a["Properties"]["Namespace"] == "AWS/Lambda"}
    assert functions == set(FUNCTIONS)
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_moto_builds_the_alarm_topic_only_with_an_alarm_email(project, stack):
    template = packaged_template(project)
    quiet = template_parameters(template)
    create_transformed_stack(stack, template, quiet)
    kinds = {r["ResourceType"] for r in stack_resources(stack).values()}
    assert "AWS::SNS::Topic" not in kinds and "AWS::CloudWatch::Alarm" not in kinds
    create_transformed_stack(stack + "-alarmed", template, dict(quiet, AlarmEmail="me@example.com"))
    built = stack_resources(stack + "-alarmed")
    assert built["AlarmTopic"]["ResourceType"] == "AWS::SNS::Topic"
    # moto has no CloudFormation support for AWS::CloudWatch::Alarm (it skips them): the alarms
    # themselves are checked on the translated template above.


@pytest.mark.parametrize("domain", ["", "monzo-auth.example.com"])
def test_a_custom_domain_switches_the_execute_api_endpoint_off(domain):
    template, values = translated(CustomDomainName=domain, CustomDomainCertificateArn="arn:aws:acm:eu-west-2:123456789012:certificate/x" if domain else "")
    (api,) = resources(template, values, "AWS::ApiGatewayV2::Api").values()
    # SAM writes it into the API's OpenAPI body, where API Gateway reads it.
    (server,) = api["Properties"]["Body"]["servers"]
    assert server["x-amazon-apigateway-endpoint-configuration"]["disableExecuteApiEndpoint"] is bool(domain)
    assert bool(resources(template, values, "AWS::ApiGatewayV2::DomainName")) is bool(domain)


def test_the_throttle_is_a_setting():
    template, values = translated(ThrottleRateLimit="5", ThrottleBurstLimit="9")
    (stage,) = resources(template, values, "AWS::ApiGatewayV2::Stage").values()
    settings = stage["Properties"]["DefaultRouteSettings"]
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == ("5", "9")
