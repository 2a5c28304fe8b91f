//! `make set-secret` (scripts/set_secret.py) against moto's CloudFormation and KMS: the secret
//! is read from a pipe, never echoed, encrypted under the stack's key with the context the
//! token function decrypts with, and set on the stack together with the client id.

use std::io::Write as _;
use std::process::Stdio;

use e2e_tests::aws;
use e2e_tests::*;

fn venv_python() -> std::path::PathBuf {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make test`, which creates the virtualenv",
        python.display()
    );
    python
}

/// Runs Python with boto3 against moto only.
fn python(moto: &str, home: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = clean_command(&venv_python())
        .args(args)
        .current_dir(home)
        .envs(aws::child_aws_env(moto, home))
        .env("AWS_DEFAULT_REGION", aws::REGION)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// A stack with the parameters and outputs of template.yaml that set-secret relies on (moto
/// cannot run the SAM transform, so the functions are left out).
fn create_stack(moto: &str, home: &std::path::Path, name: &str) {
    let template: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    for parameter in [
        "MonzoClientId",
        "MonzoClientSecretCiphertext",
        "KeyAdministratorArn",
    ] {
        assert!(
            !template["Parameters"][parameter].is_null(),
            "template.yaml lost {parameter}"
        );
    }
    for output in ["SecretKeyId", "CallbackUrl"] {
        assert!(
            !template["Outputs"][output].is_null(),
            "template.yaml lost output {output}"
        );
    }
    let script = format!(
        r#"
import boto3, json
tpl = {{
  "Parameters": {{
    "MonzoClientId": {{"Type": "String", "Default": ""}},
    "MonzoClientSecretCiphertext": {{"Type": "String", "Default": "", "NoEcho": True}},
    "KeyAdministratorArn": {{"Type": "String"}},
  }},
  "Resources": {{"SecretKey": {{"Type": "AWS::KMS::Key", "Properties": {{"KeyPolicy": {{"Version": "2012-10-17", "Statement": []}}}}}}}},
  "Outputs": {{
    "SecretKeyId": {{"Value": {{"Ref": "SecretKey"}}}},
    "CallbackUrl": {{"Value": "https://abc.execute-api.eu-west-2.amazonaws.com/callback"}},
  }},
}}
boto3.client("cloudformation").create_stack(StackName="{name}", TemplateBody=json.dumps(tpl),
  Parameters=[{{"ParameterKey": "KeyAdministratorArn", "ParameterValue": "arn:aws:iam::123456789012:user/admin"}}])
"#
    );
    let output = python(moto, home, &["-c", &script], "");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A fresh stack under a random name (tests share one moto).
fn fresh_stack(moto: &str, home: &std::path::Path) -> String {
    let suffix = shared::session::random_token::<6>()
        .to_lowercase()
        .replace(['-', '_'], "x");
    let stack = format!("monzo-auth-{suffix}");
    create_stack(moto, home, &stack);
    stack
}

fn set_secret_script() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/set_secret.py");
    path.to_str().unwrap().to_owned()
}

fn stack_parameters(moto: &str, home: &std::path::Path, name: &str) -> serde_json::Value {
    let script = format!(
        "import boto3, json; s = boto3.client('cloudformation').describe_stacks(StackName='{name}')['Stacks'][0]; \
         print(json.dumps({{p['ParameterKey']: p.get('ParameterValue') for p in s['Parameters']}}))"
    );
    let output = python(moto, home, &["-c", &script], "");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn set_secret_encrypts_with_the_stack_key_and_updates_the_stack() {
    let moto = aws::moto_endpoint();
    let home = tempfile::tempdir().unwrap();
    let stack = fresh_stack(&moto, home.path());
    let secret = new_client_secret();
    let script = set_secret_script();
    let output = python(
        &moto,
        home.path(),
        &[
            &script,
            "--stack-name",
            &stack,
            "--client-id",
            "oauth2client_00009abc",
        ],
        &format!("{secret}\n"),
    );
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{printed}");
    assert!(
        printed.contains("https://abc.execute-api.eu-west-2.amazonaws.com/callback"),
        "{printed}"
    );
    assert_no_secret(
        "set-secret's output",
        printed.as_bytes(),
        &[("client secret", secret.clone())],
    );

    let parameters = stack_parameters(&moto, home.path(), &stack);
    assert_eq!(parameters["MonzoClientId"], "oauth2client_00009abc");
    assert_eq!(
        parameters["KeyAdministratorArn"], "arn:aws:iam::123456789012:user/admin",
        "kept"
    );
    let ciphertext = parameters["MonzoClientSecretCiphertext"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_no_secret(
        "the stack parameter",
        ciphertext.as_bytes(),
        &[("client secret", secret.clone())],
    );

    // The token function's own decryption (same key, same context) gets the secret back.
    let kms = aws_sdk_kms::Client::new(&aws::sdk_config(&moto));
    let blob =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &ciphertext).unwrap();
    let plain = kms
        .decrypt()
        .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(blob.clone()))
        .encryption_context("app", "monzo-auth")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.plaintext().unwrap().as_ref(), secret.as_bytes());
    let wrong_context = kms
        .decrypt()
        .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(blob))
        .encryption_context("app", "other")
        .send()
        .await;
    assert!(
        wrong_context.is_err(),
        "the context is bound into the ciphertext"
    );
}

#[tokio::test]
async fn set_secret_refuses_an_empty_secret_and_changes_nothing() {
    let moto = aws::moto_endpoint();
    let home = tempfile::tempdir().unwrap();
    let stack = fresh_stack(&moto, home.path());
    let script = set_secret_script();
    let output = python(
        &moto,
        home.path(),
        &[&script, "--stack-name", &stack, "--client-id", "c"],
        "\n",
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("nothing changed"));
    assert_eq!(
        stack_parameters(&moto, home.path(), &stack)["MonzoClientSecretCiphertext"],
        ""
    );
}
