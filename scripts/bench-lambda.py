#!/usr/bin/env python3
"""`make bench-lambda`: the three Lambda functions' cold requests as AWS runs them at the
template's 128 MB, beside a bare lambda_http function (the floor) in the same run. Loopback only;
needs root (the CPU quota and the mount namespace below). The requests people hit cold:

  new       GET /new                         200 {"id", "login_url", ...}: writes a session
  callback  GET /callback?state=..&code=..   303 to callback/done: reads a fresh pending session
            (one per run, made by `new` just before) and seals the code into it
  token     POST /token id=..                202 authorization_pending: a fresh pending session
            per run; decrypts the client secret with KMS at init
  floor     GET /new                         200 {"message":"hello"} (bench/lambda-floor)

What AWS provides, played here: DynamoDB and KMS are two moto_servers on loopback, over TLS with
a certificate from a test CA made for this run (openssl); KMS through AWS_ENDPOINT_URL_KMS. The
functions trust that CA through the system bundle, as they trust Amazon's on Lambda: a copy of the
bundle with the CA added is bind-mounted over /etc/ssl/certs/ca-certificates.crt (and
/etc/pki/tls/certs/ca-bundle.crt where it exists) in a private mount namespace (unshare -m) that
only the functions' harness sees. Lambda gives a 128 MB function 7.2 % of a vCPU (1,769 MB is
one): a cgroup v1 `cpu` quota of 7200 us every 100000 us (--memory or MEMORY for another size:
14500 us at 256 MB, 28900 at 512). Modes (--modes or MODES, default
"full invoke all"): full = no quota; invoke = the quota from the first event on (as if init had a
whole core); all = the quota from the process's start (what Lambda documents). Without a
writable /sys/fs/cgroup/cpu the quota is skipped, and said so, and only `full` runs.

--runs (RUNS, 10) fresh processes per target and mode after one warm-up, targets interleaved
(scripts/lambda_init.py, the harness: a stand-in for Lambda's Runtime API). Any other answer fails
the run (exit 1). Prints one markdown table: per function and mode the medians of init, first
request and the two together (wall ms), the CPU time of the cold request (the process's own user
+ sys: init and the first request) and its ratio to the floor's in the same mode, peak RSS, and a
warm request: the same event again in the same process (its time and CPU; the callback's replay
answers its 400 page, having read the session);
then the bootstraps' sizes. Needs the release bootstraps (make bench-lambda builds them) and
.venv's moto_server and boto3.
"""

import argparse
import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.dont_write_bytecode = True  # no __pycache__ left in scripts/
import lambda_init  # noqa: E402  (the harness beside this file: its events)

HARNESS = os.path.join(ROOT, "scripts", "lambda_init.py")
MOTO_SERVER = os.path.join(ROOT, ".venv", "bin", "moto_server")
FUNCTIONS = ("new", "callback", "token")
BOOTSTRAPS = {name: os.path.join(ROOT, "target", "lambda", "monzo-auth-" + name, "bootstrap")
              for name in FUNCTIONS}
BOOTSTRAPS["floor"] = os.path.join(ROOT, "target", "lambda", "lambda-floor", "bootstrap")
# What each target must answer: a status, and a text its response (headers and body) holds.
EXPECT = {
    "new": (200, "login_url"),
    "callback": (303, "callback/done"),
    "token": (202, "authorization_pending"),
    "floor": (200, "hello"),
}
# The system CA bundles the functions read (adapters/dynamodb's system_ca_bundle): the test CA
# goes over each that exists (Debian's here; Amazon Linux's on such a machine).
BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
CPU_CGROUPS = "/sys/fs/cgroup/cpu"
PERIOD_US = 100000
# Lambda gives a function CPU in proportion to its memory: one vCPU at 1,769 MB.
ONE_VCPU_MB = 1769


def quota_us(memory_mb):
    """The cgroup quota per period for a function of `memory_mb` (7200 us at 128 MB)."""
    return round(PERIOD_US * memory_mb / ONE_VCPU_MB / 100) * 100


REGION = "eu-west-2"
MODE_MEANS = {
    "full": "no CPU quota",
    "invoke": "the CPU quota from the first event on",
    "all": "the CPU quota from the process's start",
}
# Run as the harness's own command, in a fresh private mount namespace: the bundle ($0) over
# every system bundle that exists, then the command. The machine's bundles are left alone.
WITH_TEST_CA = """set -e
for bundle in %s; do
  if [ -e "$bundle" ]; then mount --bind "$0" "$bundle"; fi
done
exec "$@"
""" % " ".join(BUNDLES)


def say(message):
    print(message, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certificates(work):
    """A test CA and a certificate for localhost/127.0.0.1 it signed; the bundle with the CA."""
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=work, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=monzo-auth bench-lambda test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=localhost")
    with open(os.path.join(work, "server.ext"), "w") as ext:
        ext.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext")
    system = next(path for path in BUNDLES if os.path.exists(path))
    with open(system) as base, open(os.path.join(work, "ca.pem")) as ca:
        bundle = base.read().rstrip("\n") + "\n" + ca.read()
    with open(os.path.join(work, "bundle.pem"), "w") as out:
        out.write(bundle)
    return os.path.join(work, "ca.pem"), os.path.join(work, "bundle.pem")


def start_moto(work, name, ca):
    """One moto_server over TLS on a free loopback port; its process and endpoint."""
    port = free_port()
    log = open(os.path.join(work, "moto-%s.log" % name), "w")
    process = subprocess.Popen(
        [MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port), "-c", "server.pem", "-k", "server.key"],
        cwd=work, stdout=log, stderr=subprocess.STDOUT)
    endpoint = "https://localhost:%d" % port
    trust = ssl.create_default_context(cafile=ca)
    for _ in range(150):
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1, context=trust).close()
            return process, endpoint
        except (OSError, urllib.error.URLError):
            if process.poll() is not None:
                break
            time.sleep(0.2)
    process.kill()
    sys.exit("moto_server (%s) did not start: see %s" % (name, log.name))


def set_up_aws(dynamodb_endpoint, kms_endpoint, ca):
    """The sessions table as template.yaml defines it, and the client secret encrypted under
    the context the token function decrypts with; returns the ciphertext (base64)."""
    fake = dict(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing",
                verify=ca)
    boto3.client("dynamodb", endpoint_url=dynamodb_endpoint, **fake).create_table(
        TableName="sessions",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    kms = boto3.client("kms", endpoint_url=kms_endpoint, **fake)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"mnzconf.benchlambdasecret",
                       EncryptionContext={"app": "monzo-auth"})["CiphertextBlob"]
    return base64.b64encode(blob).decode()


def cpu_quota_cgroup(quota):
    """A cgroup v1 `cpu` group with `quota` us of CPU per period, or None (and why) where there is
    none."""
    if not os.access(CPU_CGROUPS, os.W_OK) or not os.path.exists(
            os.path.join(CPU_CGROUPS, "cpu.cfs_quota_us")):
        return None, "%s (the cgroup v1 cpu controller) is not writable here" % CPU_CGROUPS
    group = os.path.join(CPU_CGROUPS, "monzo-auth-bench-lambda-%d" % os.getpid())
    try:
        os.mkdir(group)
        for name, value in (("cpu.cfs_period_us", PERIOD_US), ("cpu.cfs_quota_us", quota)):
            with open(os.path.join(group, name), "w") as f:
                f.write(str(value))
    except OSError as err:
        remove_cgroup(group)
        return None, "a cpu cgroup could not be set up (%s)" % err
    return group, None


def remove_cgroup(group):
    try:
        os.rmdir(group)  # empty by now: the harness reaps every process it starts
    except OSError:
        pass


def harness(work, bundle, args, log):
    """scripts/lambda_init.py with ARGS in a private mount namespace that trusts the test CA;
    its output goes to LOG (a file) or, when None, to this terminal. Its exit code."""
    command = ["unshare", "-m", "--propagation", "private", "sh", "-c", WITH_TEST_CA, bundle,
               sys.executable, HARNESS, *args]
    if log is None:
        return subprocess.call(command, cwd=work)
    with open(log, "w") as out:
        return subprocess.call(command, cwd=work, stdout=out, stderr=subprocess.STDOUT)


def fresh_sessions(work, bundle, common, mode, count):
    """COUNT pending sessions, each made by one run of `new`: [(poll id, state)]."""
    result = os.path.join(work, "sessions-%s.json" % mode)
    code = harness(work, bundle, [
        *common, "-n", str(count), "--warmup", "0", "--quiet-max", "0", "--json", result,
        "--expect", "new=%d:%s" % EXPECT["new"], "new=" + BOOTSTRAPS["new"],
    ], os.path.join(work, "sessions-%s.log" % mode))
    if code != 0:
        sys.exit("could not make the pending sessions for mode %s: see %s/sessions-%s.log"
                 % (mode, work, mode))
    with open(result) as f:
        runs = json.load(f)["runs"]["new"]
    sessions = []
    for run in runs:
        answer = json.loads(run["body"])
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(answer["login_url"]).query)
        sessions.append((answer["id"], query["state"][0]))
    return sessions


def write_events(path, events):
    with open(path, "w") as f:
        json.dump(events, f, indent=1)
    return path


def size_mib(path):
    return os.path.getsize(path) / (1024 * 1024)


def function_settings(dynamodb_endpoint, kms_endpoint, ciphertext):
    """The harness's options every function gets: the template's settings (its Globals and each
    function's; the ones a function does not read are ignored), AWS on moto. Monzo's URLs are a
    closed loopback port (none of these requests calls Monzo); sessions live an hour, so a long
    run's stay pending."""
    settings = {
        "TABLE_NAME": "sessions",
        "MONZO_TIMEOUT_SECS": "8",
        "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH": "true",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "INFO",
        "MONZO_CLIENT_ID": "oauth2client_benchlambda",
        "MONZO_CLIENT_SECRET_KMS": ciphertext,
        "AWS_ENDPOINT_URL_KMS": kms_endpoint,
        "MONZO_AUTH_URL": "http://127.0.0.1:%d/" % free_port(),
        "MONZO_API_URL": "http://127.0.0.1:%d" % free_port(),
        "SESSION_TTL_SECS": "3600",
    }
    options = ["--endpoint-url", dynamodb_endpoint, "--timeout", "30"]
    for name, value in settings.items():
        options += ["-e", "%s=%s" % (name, value)]
    return options


def measure(work, bundle, common, mode, group, args):
    """One mode: fresh sessions, then the four targets, interleaved. The harness's summary (or
    None) and whether every answer was the expected one."""
    # Every callback and every poll gets a session of its own, untouched until then.
    per_target = 1 + args.runs  # the warm-up, then the measured runs
    sessions = fresh_sessions(work, bundle, common, mode, 2 * per_target)
    callbacks = [lambda_init.make_event(
        "GET", "/callback", query="state=%s&code=bench-lambda-code-%d" % (state, i),
        headers=["accept: text/html,application/xhtml+xml"], region=REGION)
        for i, (_, state) in enumerate(sessions[:per_target])]
    polls = [lambda_init.make_event("POST", "/token", body="id=" + poll_id, region=REGION)
             for poll_id, _ in sessions[per_target:]]
    new_event = write_events(os.path.join(work, "new.json"),
                             lambda_init.make_event("GET", "/new", region=REGION))
    quota = {"full": [], "invoke": ["--cgroup-at-invoke", group], "all": ["--cgroup", group]}
    say("\n=== mode %s (%s: %d us per %d us)"
        % (mode, MODE_MEANS[mode], quota_us(args.memory), PERIOD_US))
    result = os.path.join(work, "%s.json" % mode)
    code = harness(work, bundle, [
        *common, *quota[mode], "-n", str(args.runs), "--warmup", "1", "--warm",
        "--quiet-max", str(args.quiet_max), "--json", result,
        *["--expect=%s=%d:%s" % (label, status, text) for label, (status, text) in EXPECT.items()],
        "--floor", "%s@%s" % (BOOTSTRAPS["floor"], new_event),
        "new=%s@%s" % (BOOTSTRAPS["new"], new_event),
        "callback=%s@%s" % (BOOTSTRAPS["callback"],
                            write_events(os.path.join(work, "callback-%s.json" % mode), callbacks)),
        "token=%s@%s" % (BOOTSTRAPS["token"],
                         write_events(os.path.join(work, "token-%s.json" % mode), polls)),
    ], None)
    if not os.path.exists(result):
        return None, False
    with open(result) as f:
        return json.load(f), code == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=int(os.environ.get("RUNS") or 10),
                        help="measured processes per target and mode (RUNS; 10)")
    parser.add_argument("--modes", default=os.environ.get("MODES") or " ".join(MODE_MEANS),
                        help='CPU modes, of "full invoke all" (MODES; all three)')
    parser.add_argument("--memory", type=int, default=int(os.environ.get("MEMORY") or 128),
                        help="the function's MemorySize in MB, which sets its CPU share "
                             "(MEMORY; 128, the template's)")
    parser.add_argument("--quiet-max", type=int, default=60,
                        help="seconds each mode waits for a quiet machine (<10%% busy) first")
    args = parser.parse_args()
    modes = args.modes.split()
    if not modes or any(mode not in MODE_MEANS for mode in modes) or args.runs < 1:
        parser.error("--modes takes full, invoke and all; --runs at least 1")
    if os.geteuid() != 0:
        sys.exit("bench-lambda needs root: a private mount namespace (unshare -m) puts the test CA "
                 "into the system bundle, and the CPU quota is a cgroup")
    missing = [path for path in BOOTSTRAPS.values() if not os.access(path, os.X_OK)]
    if missing:
        sys.exit("missing: %s (make bench-lambda builds them)" % ", ".join(missing))
    if not os.access(MOTO_SERVER, os.X_OK):
        sys.exit("missing: %s (make bench-lambda installs it: the .venv target)" % MOTO_SERVER)
    if not any(os.path.exists(path) for path in BUNDLES):
        sys.exit("no system CA bundle at %s to add the test CA to" % " or ".join(BUNDLES))

    work = tempfile.mkdtemp(prefix="bench-lambda-")
    # boto3 here (the functions get their own environment from the harness): fake credentials,
    # no metadata service, no configuration files.
    os.environ.update({
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.path.join(work, "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(work, "no-aws-credentials"),
    })
    group = None
    if set(modes) - {"full"}:
        group, why_not = cpu_quota_cgroup(quota_us(args.memory))
        if group is None:
            say("CPU quota skipped: %s; measuring at full CPU only (mode full)" % why_not)
            modes = ["full"]
    motos, results, failed = [], {}, []
    try:
        ca, bundle = make_certificates(work)
        for name in ("dynamodb", "kms"):
            motos.append(start_moto(work, name, ca))
        (_, dynamodb_endpoint), (_, kms_endpoint) = motos
        ciphertext = set_up_aws(dynamodb_endpoint, kms_endpoint, ca)
        common = function_settings(dynamodb_endpoint, kms_endpoint, ciphertext)
        common += ["--memory", str(args.memory)]
        for mode in modes:
            summary, good = measure(work, bundle, common, mode, group, args)
            if summary:
                results[mode] = summary
            if not good:
                failed.append(mode)
    finally:
        for process, _ in motos:
            process.terminate()
            process.wait()
        if group:
            remove_cgroup(group)

    report(results, modes, args.runs, args.memory)
    if failed:
        say("\nFAILED: mode %s: a run gave another answer, or none (above); files kept in %s"
            % (", ".join(failed), work))
        sys.exit(1)
    shutil.rmtree(work, ignore_errors=True)


def median(summary, key, scale=1.0):
    """A target's median of KEY from the harness's summary (None when no run was good)."""
    return summary[key]["median"] / scale if summary[key] else None


def report(results, modes, runs, memory):
    """The headline table: per function and mode, medians; CPU as a ratio to the floor's."""
    say("\n## bench-lambda: cold requests at %d MB (medians of %d fresh processes)\n"
        % (memory, runs))
    say("| function | mode | ok | init ms | first request ms | init+first ms | CPU ms | CPU x floor "
        "| peak RSS MiB | warm ms | warm CPU ms |")
    say("|---|---|---|---|---|---|---|---|---|---|---|")
    for label in (*FUNCTIONS, "floor"):
        for mode in modes:
            if mode not in results:
                continue
            summary = {s["label"]: s for s in results[mode]["summary"]}
            s, floor = summary[label], summary["floor"]
            figures = [median(s, "init_ms"), median(s, "invoke_ms"), median(s, "total_ms"),
                       median(s, "cpu_ms")]
            cpu, floor_cpu = figures[3], median(floor, "cpu_ms")
            ratio = "x%.1f" % (cpu / floor_cpu) if cpu and floor_cpu else "-"
            rss = median(s, "peak_rss_kb", 1024)
            warm = [median(s, "warm_ms"), median(s, "warm_cpu_ms")]
            say("| %s | %s | %d/%d | %s | %s | %s | %s |" % (
                label, mode, s["ok"], s["runs"],
                " | ".join("%.1f" % x if x is not None else "-" for x in figures),
                ratio, "%.1f" % rss if rss is not None else "-",
                " | ".join("%.2f" % x if x is not None else "-" for x in warm)))
    say("")
    foreign = ["%s %.1f %%" % (mode, results[mode]["foreign_cpu_pct"]) for mode in modes
               if mode in results and results[mode].get("foreign_cpu_pct") is not None]
    if foreign:
        say("CPU taken by other processes during the runs (of the machine): " + ", ".join(foreign))
    say("bootstrap sizes: " + ", ".join("%s %.2f MiB" % (label, size_mib(path))
                                        for label, path in BOOTSTRAPS.items()))


if __name__ == "__main__":
    main()
