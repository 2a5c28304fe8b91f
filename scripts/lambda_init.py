#!/usr/bin/env python3
"""Lambda cold-start figures for `bootstrap` binaries: every run is a fresh process against a
stand-in for the AWS Lambda Runtime API on 127.0.0.1, timed as Lambda's REPORT line times it.
`make bench-lambda` (scripts/bench-lambda.py) drives it; it also runs on its own.

Per run (a new process each time, with Lambda's usual environment):
  init           spawn -> its first GET /2018-06-01/runtime/invocation/next (Lambda's Init Duration)
  first request  the event delivered (the /next answer written) -> the response POSTed (body read)
  CPU            the process's own user + sys time (wait4's rusage): init, the first request and
                 the step to its second /next, where it is killed
  peak RSS       VmHWM (/proc/PID/status) once it has answered, and VmRSS at its first /next
                 (wait4's ru_maxrss is not used: it starts from the spawning Python's RSS,
                 carried over at exec)
The process is killed (SIGKILL, by PID) while it waits on its second /next, and reaped. With
--warm, its second /next gets the same event again first (a new request id), and the run also
records that warm request: its time (delivered -> response) and CPU (the threads' own run time,
/proc/PID/task/*/schedstat, over the request); the cold CPU is then the total less the warm.

Usage:
  lambda_init.py [options] TARGET [TARGET ...]
      TARGET = [LABEL=]BOOTSTRAP[@EVENTS.json]
      EVENTS.json holds one API Gateway event for every run, or a JSON list of events, one per
      run in order, warm-ups first (a fresh session for every callback, say); without it, the
      event from --method/--path/--query/--body
  lambda_init.py --write-event FILE --method POST --path /token --body 'id=...'

  -n 20 runs per target (after --warmup 1 discarded), targets interleaved run by run;
  --floor BOOTSTRAP[@EVENTS.json]  measured the same way (label `floor`), and every target's
                         medians are also printed as ratios to the floor's;
  --expect LABEL=STATUS[:TEXT]  a run of LABEL fails unless it answers STATUS with TEXT
                         somewhere in its response (headers or body); repeatable;
  -e KEY=VALUE           extra environment for every target (repeatable);
  --endpoint-url URL     AWS_ENDPOINT_URL (default: a closed loopback port, so an AWS call
                         fails at once instead of leaving the machine);
  --cgroup DIR           a cgroup (CPU quota) each process joins right after its spawn;
  --cgroup-at-invoke DIR the same, when its first event is delivered (init at full speed);
  --json FILE            raw per-run figures and the summary.

Standard library only (Python 3.10 or newer). Listens on 127.0.0.1 only, on a port of its own
for every run; ends only the processes it started, by PID. Timestamps are CLOCK_MONOTONIC in this process. The stand-in is Python's
http.server (a thread per connection; a GET is stamped when its request line is read), which adds
a fraction of a millisecond, and so does process creation: compare targets with the floor
measured in the same run, not with AWS's absolute Init Duration (which adds the sandbox).
"""

import argparse
import base64
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NEXT = "/2018-06-01/runtime/invocation/next"
INV_PREFIX = "/2018-06-01/runtime/invocation/"
INIT_ERROR = "/2018-06-01/runtime/init/error"
ACCOUNT = "123456789012"
# How much of a response body a run keeps (the caller reads `new`'s answers from it).
BODY_KEPT = 4096
now_ns = time.monotonic_ns


# ---------------------------------------------------------------------------------------------
# API Gateway HTTP API (payload format 2.0) event
def make_event(method="GET", path="/new", query="", body=None, headers=(), content_type=None,
               region="eu-west-2", base64_body=False):
    api_id = "bench0api1"
    domain = "%s.execute-api.%s.amazonaws.com" % (api_id, region)
    hdrs = {
        "accept": "application/json",
        "content-length": str(len(body.encode()) if body is not None else 0),
        "host": domain,
        "user-agent": "monzo-auth-bench-lambda/1",
        "x-amzn-trace-id": "Root=1-674970c0-0123456789abcdef01234567",
        "x-forwarded-for": "127.0.0.1",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if body is None:
        del hdrs["content-length"]
    if content_type or body is not None:
        hdrs["content-type"] = content_type or "application/x-www-form-urlencoded"
    for h in headers:
        k, _, v = h.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    ev = {
        "version": "2.0",
        "routeKey": "%s %s" % (method, path),
        "rawPath": path,
        "rawQueryString": query,
        "headers": hdrs,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": api_id,
            "domainName": domain,
            "domainPrefix": api_id,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": hdrs["user-agent"]},
            "requestId": "BenchReq000000=",
            "routeKey": "%s %s" % (method, path),
            "stage": "$default",
            "time": "29/Nov/2026:09:00:00 +0000",
            "timeEpoch": 1795942800000,
        },
        "isBase64Encoded": bool(base64_body),
    }
    if query:
        qs = {}
        for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True):
            qs[k] = qs[k] + "," + v if k in qs else v  # API Gateway v2 joins repeats with commas
        ev["queryStringParameters"] = qs
    if body is not None:
        ev["body"] = base64.b64encode(body.encode()).decode() if base64_body else body
    return ev


# ---------------------------------------------------------------------------------------------
# Runtime API stand-in
class Run:
    """One process's life as the Runtime API sees it."""

    def __init__(self, event_bytes, label, fn_name, region, pid_box):
        self.event = event_bytes
        self.label = label
        self.fn_name = fn_name
        self.region = region
        self.request_id = "%s-%s-%s-%s-%s" % (secrets.token_hex(4), secrets.token_hex(2),
                                              secrets.token_hex(2), secrets.token_hex(2),
                                              secrets.token_hex(6))
        self.pid_box = pid_box  # [pid], set once spawned
        self.t_next = self.t_delivered = self.t_response = None
        self.rss_at_next_kb = None
        self.response = None
        self.error = None  # (kind, type header, body prefix)
        self.unexpected = []
        self.delivered = False
        # --warm: the same event once more, on the second /next
        self.warm_wanted = False
        self.warm_request_id = self.request_id + "-warm"
        self.warm_delivered = False
        self.t_warm_delivered = self.t_warm_response = None
        self.warm_cpu_before_ns = self.warm_cpu_ns = None
        self.warm_response = None
        self.done = threading.Event()
        self.release = threading.Event()


def proc_status_kb(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def threads_cpu_ns(pid):
    """CPU time the process's live threads have run, in ns (schedstat: finer than /proc/PID/stat's
    clock ticks)."""
    total = 0
    try:
        for task in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/schedstat" % (pid, task)) as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        return None
    return total


def join_cgroup(cgroup, pid):
    """Moves every thread of `pid` into the cgroup (v1 cpu or v2: cgroup.procs)."""
    with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
        f.write(str(pid))


class RuntimeAPI:
    """The stand-in for one run, on a port of its own: whatever a killed process had already sent
    (its second /next on a new connection, say) stays with its own run's stand-in and can never
    pass for the next process's first request."""

    def __init__(self, run, cgroup_at_invoke=None):
        self.run = run
        self.cgroup_at_invoke = cgroup_at_invoke
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "bench-runtime-api"
            sys_version = ""

            def log_message(self, *args):
                pass

            def parse_request(self):
                # the request line has just been read: stamp it before the header parsing
                self.t_line = now_ns()
                return super().parse_request()

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n > 0 else b""

            def _send(self, status, body=b"", headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def do_GET(self):
                t = self.t_line
                run = api.run
                if self.path != NEXT:
                    run.unexpected.append("GET " + self.path)
                    return self._send(404, b'{"errorMessage":"not found"}')
                if not run.delivered:
                    run.delivered = True
                    run.t_next = t
                    run.rss_at_next_kb = proc_status_kb(run.pid_box[0], "VmRSS")
                    if api.cgroup_at_invoke:  # Lambda's CPU share from the invoke on
                        join_cgroup(api.cgroup_at_invoke, run.pid_box[0])
                    deadline = int(time.time() * 1000) + 30000
                    arn = "arn:aws:lambda:%s:%s:function:%s" % (run.region, ACCOUNT, run.fn_name)
                    self._send(200, run.event, [
                        ("Lambda-Runtime-Aws-Request-Id", run.request_id),
                        ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                        ("Lambda-Runtime-Invoked-Function-Arn", arn),
                        ("Lambda-Runtime-Trace-Id",
                         "Root=1-674970c0-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=0"),
                    ])
                    run.t_delivered = now_ns()
                    return
                if run.warm_wanted and not run.warm_delivered:  # --warm: the same event again
                    run.warm_delivered = True
                    run.warm_cpu_before_ns = threads_cpu_ns(run.pid_box[0])
                    deadline = int(time.time() * 1000) + 30000
                    arn = "arn:aws:lambda:%s:%s:function:%s" % (run.region, ACCOUNT, run.fn_name)
                    self._send(200, run.event, [
                        ("Lambda-Runtime-Aws-Request-Id", run.warm_request_id),
                        ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                        ("Lambda-Runtime-Invoked-Function-Arn", arn),
                    ])
                    run.t_warm_delivered = now_ns()
                    return
                # the next /next: the function is idle now; hold it (as Lambda freezes it) until
                # killed
                run.release.wait(120)
                self.close_connection = True

            def do_POST(self):
                body = self._body()
                t = now_ns()  # the response is "posted" once its body is in
                run = api.run
                if self.path == INIT_ERROR:
                    run.error = ("init", self.headers.get("Lambda-Runtime-Function-Error-Type"),
                                 body[:300].decode("utf-8", "replace"))
                    self._send(202, b'{"status":"OK"}')
                    run.done.set()
                    return
                if self.path.startswith(INV_PREFIX):
                    rid, _, what = self.path[len(INV_PREFIX):].partition("/")
                    if rid == run.warm_request_id and what in ("response", "error"):
                        after = threads_cpu_ns(run.pid_box[0])
                        run.t_warm_response = t
                        run.warm_response = body
                        if after is not None and run.warm_cpu_before_ns is not None:
                            run.warm_cpu_ns = after - run.warm_cpu_before_ns
                        self._send(202, b'{"status":"OK"}')
                        run.done.set()
                        return
                    if rid == run.request_id and what == "response":
                        run.t_response = t
                        run.response = body
                        self._send(202, b'{"status":"OK"}')
                        if not run.warm_wanted:
                            run.done.set()
                        return
                    if rid == run.request_id and what == "error":
                        run.t_response = t
                        run.error = ("invocation",
                                     self.headers.get("Lambda-Runtime-Function-Error-Type"),
                                     body[:300].decode("utf-8", "replace"))
                        self._send(202, b'{"status":"OK"}')
                        run.done.set()
                        return
                run.unexpected.append("POST " + self.path)
                self._send(404, b'{"errorMessage":"not found"}')

            do_PUT = do_DELETE = do_POST

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 64

            def handle_error(self, request, client_address):
                # a function killed by SIGKILL resets its connections: expected, not news
                if isinstance(sys.exc_info()[1], (ConnectionError, BrokenPipeError)):
                    return
                super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------
def cpu_busy_jiffies():
    with open("/proc/stat") as f:
        v = f.readline().split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in v[:8])
    return user + nice + system + irq + softirq + steal


def wait_quiet(max_s, say):
    """Waits (bounded) until the machine is less than 10 % busy."""
    tck, ncpu, start = os.sysconf("SC_CLK_TCK"), os.cpu_count() or 1, time.time()
    while True:
        b0 = cpu_busy_jiffies()
        time.sleep(2)
        pct = (cpu_busy_jiffies() - b0) * 100 / (2 * tck * ncpu)
        if pct < 10:
            return pct
        if time.time() - start > max_s:
            say("WARNING: machine still %.0f%% busy after %d s; measuring anyway" % (pct, max_s))
            return pct
        say("waiting for quiet machine (%.0f%% busy)" % pct)
        time.sleep(8)


def closed_loopback_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Target:
    def __init__(self, label, path, event_name, events, per_run):
        self.label, self.path, self.event_name = label, path, event_name
        self.events, self.per_run = events, per_run  # per_run: one event for each run, in order
        self.runs, self.warm = [], []

    def event(self, i):
        """The event of run `i` (warm-ups counted first)."""
        return self.events[i] if self.per_run else self.events[0]


def parse_target(spec, default_event, default_event_name):
    label = None
    if "=" in spec.split("@", 1)[0]:
        label, spec = spec.split("=", 1)
    path, event_path = spec, None
    if "@" in spec:
        path, event_path = spec.rsplit("@", 1)
    path = os.path.abspath(path)
    if not label:
        parent = os.path.basename(os.path.dirname(path))
        label = parent if parent not in ("release", "debug", "bin", "") else os.path.basename(path)
    if not event_path:
        return Target(label, path, default_event_name, [default_event], False)
    event_path = os.path.abspath(event_path)
    with open(event_path, "rb") as f:
        doc = json.load(f)
    if isinstance(doc, list):  # one event per run
        events = [json.dumps(e, indent=2).encode() + b"\n" for e in doc]
        return Target(label, path, "%s (%d events, one per run)" % (event_path, len(doc)), events, True)
    return Target(label, path, event_path, [json.dumps(doc, indent=2).encode() + b"\n"], False)


def parse_expectations(specs, ap):
    """`LABEL=STATUS[:TEXT]` -> {label: (status, text)}."""
    expect = {}
    for spec in specs:
        label, sep, rest = spec.partition("=")
        status, _, text = rest.partition(":")
        if not sep or not label or not status.isdigit():
            ap.error("--expect wants LABEL=STATUS[:TEXT], got %r" % spec)
        expect[label] = (int(status), text)
    return expect


def lambda_env(args, api_port, target, home, endpoint):
    name = args.function_name or target.label
    env = {
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:%d" % api_port,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(args.memory),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/" + name,
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/29/[$LATEST]" + secrets.token_hex(16),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": args.region,
        "AWS_DEFAULT_REGION": args.region,
        # Fake credentials, as Lambda passes its role's, and no metadata service; HOME is a
        # fresh folder without ~/.aws: nothing to look up, nothing that could leave the machine.
        "AWS_ACCESS_KEY_ID": "AKIABENCHTESTING0000",
        "AWS_SECRET_ACCESS_KEY": "bench-testing-secret-access-key-not-real",
        "AWS_SESSION_TOKEN": "bench-testing-session-token-not-real",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": endpoint,
        "HOME": home,
        "LAMBDA_TASK_ROOT": os.path.dirname(target.path),
        "LAMBDA_RUNTIME_DIR": os.path.dirname(target.path),
        "_HANDLER": "bootstrap",
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
    }
    for kv in args.env:
        k, sep, v = kv.partition("=")
        if not sep:
            sys.exit("-e wants KEY=VALUE, got %r" % kv)
        env[k] = v
    return env


def spawn_and_wait(target, run, api, args, home, endpoint, log_fd):
    """Starts the process, waits for its answer (or its end, or the timeout), kills it."""
    env = lambda_env(args, api.port, target, home, endpoint)
    t0 = now_ns()
    pid = os.posix_spawn(target.path, [target.path], env, file_actions=[
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, log_fd, 1), (os.POSIX_SPAWN_DUP2, log_fd, 2)])
    run.pid_box[0] = pid
    deadline = time.monotonic() + args.timeout
    rusage, status, outcome, hwm = None, None, None, None
    try:
        if args.cgroup:  # Lambda's CPU share from the start (init included; joined microseconds in)
            join_cgroup(args.cgroup, pid)
        while True:
            if run.done.wait(0.005):
                outcome = "ok" if run.response is not None else "error"
                break
            wpid, st, ru = os.wait4(pid, os.WNOHANG)
            if wpid:
                rusage, status, outcome = ru, st, "exited"
                break
            if time.monotonic() > deadline:
                outcome = "timeout"
                break
        if rusage is None:
            hwm = proc_status_kb(pid, "VmHWM")
    finally:
        if rusage is None:  # still running (the normal case, or Ctrl-C): kill it, by PID
            os.kill(pid, signal.SIGKILL)
            _, status, rusage = os.wait4(pid, 0)
    return t0, status, rusage, outcome, hwm


def one_run(target, i, args, home, endpoint, log_fd, expect):
    pid_box = [0]
    run = Run(target.event(i), target.label, args.function_name or target.label, args.region,
              pid_box)
    run.warm_wanted = args.warm
    api = RuntimeAPI(run, args.cgroup_at_invoke)
    try:
        t0, status, rusage, outcome, hwm = spawn_and_wait(target, run, api, args, home, endpoint,
                                                          log_fd)
    finally:
        run.release.set()
        api.close()
    res = {
        "label": target.label,
        "outcome": outcome,
        "init_ms": (run.t_next - t0) / 1e6 if run.t_next else None,
        "invoke_ms": ((run.t_response - run.t_delivered) / 1e6
                      if run.t_response and run.t_delivered else None),
        "peak_rss_kb": hwm,
        "rss_at_next_kb": run.rss_at_next_kb,
        "cpu_ms": ((rusage.ru_utime + rusage.ru_stime) * 1000
                   - (run.warm_cpu_ns or 0) / 1e6),
        "cpu_s": rusage.ru_utime + rusage.ru_stime,
        "warm_ms": ((run.t_warm_response - run.t_warm_delivered) / 1e6
                    if run.t_warm_response and run.t_warm_delivered else None),
        "warm_cpu_ms": run.warm_cpu_ns / 1e6 if run.warm_cpu_ns is not None else None,
        "warm_status": None,
        "exit": (("signal %d" % os.WTERMSIG(status)) if os.WIFSIGNALED(status)
                 else "rc %d" % os.WEXITSTATUS(status)),
        "error": run.error,
        "unexpected": run.unexpected,
        "status": None,
        "answer": None,
        "body": None,
    }
    if run.warm_response is not None:
        try:
            res["warm_status"] = json.loads(run.warm_response).get("statusCode")
        except (ValueError, AttributeError):
            pass
    if args.warm and res["outcome"] == "ok" and res["warm_ms"] is None:
        res["outcome"] = "no answer to the warm request"
    if run.response is not None:
        try:
            doc = json.loads(run.response)
            b = doc.get("body") or ""
            if doc.get("isBase64Encoded"):
                b = base64.b64decode(b).decode("utf-8", "replace")
            res["status"] = doc.get("statusCode")
            location = (doc.get("headers") or {}).get("location")
            res["answer"] = "%s %s" % (doc.get("statusCode"),
                                       "-> " + location if location else b[:160])
            res["body"] = b[:BODY_KEPT]
        except (ValueError, AttributeError):
            res["answer"] = "non-JSON response: %r" % run.response[:160]
        if target.label in expect and res["outcome"] == "ok":
            status, text = expect[target.label]
            if res["status"] != status or text not in run.response.decode("utf-8", "replace"):
                res["outcome"] = "unexpected answer (want %d%s)" % (
                    status, " with %r" % text if text else "")
    return res


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def stats(xs):
    if not xs:
        return None
    return {"median": statistics.median(xs), "p90": pct(xs, 0.9), "min": min(xs), "max": max(xs)}


def fmt(s, unit_div=1.0, nd=2):
    if not s:
        return "-"
    return " / ".join(("%." + str(nd) + "f") % (s[k] / unit_div) for k in ("median", "p90", "min", "max"))


def summarize(t):
    ok = [r for r in t.runs if r["outcome"] == "ok"]
    return {
        "label": t.label, "path": t.path, "event": t.event_name,
        "runs": len(t.runs), "ok": len(ok),
        "init_ms": stats([r["init_ms"] for r in ok]),
        "invoke_ms": stats([r["invoke_ms"] for r in ok]),
        "total_ms": stats([r["init_ms"] + r["invoke_ms"] for r in ok]),
        "peak_rss_kb": stats([r["peak_rss_kb"] for r in ok if r["peak_rss_kb"]]),
        "rss_at_next_kb": stats([r["rss_at_next_kb"] for r in ok if r["rss_at_next_kb"]]),
        "cpu_ms": stats([r["cpu_ms"] for r in ok]),
        "warm_ms": stats([r["warm_ms"] for r in ok if r.get("warm_ms") is not None]),
        "warm_cpu_ms": stats([r["warm_cpu_ms"] for r in ok if r.get("warm_cpu_ms") is not None]),
        "warm_statuses": sorted({r["warm_status"] for r in ok if r.get("warm_status")}),
        "answers": sorted({r["answer"] or "" for r in ok}),
        "failures": [{k: r[k] for k in ("outcome", "exit", "error", "unexpected", "init_ms", "answer")}
                     for r in t.runs + t.warm if r["outcome"] != "ok"][:5],
    }


def answers_seen(answers):
    """One example of each status among distinct answers (a fresh id in each makes them many)."""
    by_status = {}
    for a in answers:
        status = a.split(" ", 1)[0]
        by_status.setdefault(status, [0, a])[0] += 1
    return " | ".join("%s (%d distinct)" % (a, n) if n > 1 else a
                      for n, a in by_status.values()) or "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="TARGET = [LABEL=]BOOTSTRAP[@EVENTS.json]")
    ap.add_argument("targets", nargs="*", metavar="TARGET")
    ap.add_argument("--floor", metavar="BOOTSTRAP[@EVENTS.json]",
                    help="the floor (a bare lambda_http function), measured alike; ratios to it")
    ap.add_argument("-n", "--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=1, help="discarded runs per target first (page cache)")
    ap.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--endpoint-url", help="AWS_ENDPOINT_URL (default: a closed loopback port)")
    ap.add_argument("--memory", type=int, default=128, help="AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    ap.add_argument("--region", default="eu-west-2")
    ap.add_argument("--function-name", help="AWS_LAMBDA_FUNCTION_NAME (default: the label)")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds a run may take")
    ap.add_argument("--warm", action="store_true",
                    help="after the cold request, the same event once more in the same process")
    ap.add_argument("--gap", type=float, default=0.05,
                    help="seconds of pause between runs (lets the killed process go away)")
    ap.add_argument("--quiet-max", type=int, default=300,
                    help="seconds to wait for a quiet machine (<10%% busy) first; 0: don't wait")
    ap.add_argument("--expect", action="append", default=[], metavar="LABEL=STATUS[:TEXT]",
                    help="a run of LABEL fails unless it answers STATUS with TEXT in its response "
                         "(default: any answer; a 5xx is flagged anyway: the service answers 503 "
                         "when KMS or DynamoDB is missing)")
    ap.add_argument("--cgroup", help="a cgroup folder (cpu quota) the function runs in from its start")
    ap.add_argument("--cgroup-at-invoke", help="a cgroup folder the function joins when its first event is delivered")
    ap.add_argument("--json", help="write raw runs and summary here")
    ap.add_argument("--logs", help="folder for the functions' stdout/stderr (default: a temp dir, removed)")
    ap.add_argument("-v", "--verbose", action="store_true")
    g = ap.add_argument_group("event (API Gateway HTTP API v2) when a target has no @EVENTS.json")
    g.add_argument("--method", default="GET")
    g.add_argument("--path", default="/new")
    g.add_argument("--query", default="")
    g.add_argument("--body", default=None)
    g.add_argument("--content-type")
    g.add_argument("--header", action="append", default=[], metavar="NAME:VALUE")
    g.add_argument("--base64-body", action="store_true")
    g.add_argument("--write-event", metavar="FILE", help="write the event to FILE and exit")
    args = ap.parse_args()

    ev = make_event(args.method, args.path, args.query, args.body, args.header, args.content_type,
                    args.region, args.base64_body)
    ev_bytes = json.dumps(ev, indent=2).encode() + b"\n"
    if args.write_event:
        with open(args.write_event, "wb") as f:
            f.write(ev_bytes)
        print("wrote %s (%s %s)" % (args.write_event, args.method, args.path))
        return 0
    if not args.targets and not args.floor:
        ap.error("give at least one TARGET or --floor")
    expect = parse_expectations(args.expect, ap)

    say = lambda m: print("# " + m, file=sys.stderr, flush=True)
    default_name = "generated %s %s%s" % (args.method, args.path, "?" + args.query if args.query else "")
    specs = (["floor=" + args.floor] if args.floor else []) + args.targets
    targets = [parse_target(s, ev_bytes, default_name) for s in specs]
    for t in targets:
        if not os.access(t.path, os.X_OK):
            sys.exit("not an executable file: %s" % t.path)
        if t.per_run and len(t.events) < args.warmup + args.runs:
            sys.exit("%s: %d events for %d runs (warm-ups included)"
                     % (t.label, len(t.events), args.warmup + args.runs))
    if len({t.label for t in targets}) != len(targets):
        sys.exit("two targets share a label; name them LABEL=PATH")

    if args.json:
        args.json = os.path.abspath(args.json)
    home = tempfile.mkdtemp(prefix="lambda-init-")
    os.chdir(home)  # the functions' working directory; nothing lands in the caller's folder
    logs = os.path.abspath(args.logs) if args.logs else home
    os.makedirs(logs, exist_ok=True)
    endpoint = args.endpoint_url or "http://127.0.0.1:%d" % closed_loopback_port()

    log_fds = {t.label: os.open(os.path.join(logs, "%s.log" % t.label),
                                os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) for t in targets}
    if args.quiet_max > 0:
        wait_quiet(args.quiet_max, say)

    tck, ncpu = os.sysconf("SC_CLK_TCK"), os.cpu_count() or 1
    try:
        for t in targets:
            for i in range(args.warmup):
                r = one_run(t, i, args, home, endpoint, log_fds[t.label], expect)
                t.warm.append(r)
                if args.verbose:
                    say("warm-up %s: %s" % (t.label, r))
        b0, w0, own0 = cpu_busy_jiffies(), time.monotonic(), os.times()
        child_cpu = 0.0
        for i in range(args.runs):
            k = i % len(targets)  # interleaved, each round starting one target further on,
            for t in targets[k:] + targets[:k]:  # so drift, neighbours and position hit all alike
                time.sleep(args.gap)
                r = one_run(t, args.warmup + i, args, home, endpoint, log_fds[t.label], expect)
                t.runs.append(r)
                child_cpu += r["cpu_s"]
                if args.verbose:
                    say("%s run %d: %s init %.2f ms first request %s ms rss %s KiB %s" % (
                        t.label, i + 1, r["outcome"], r["init_ms"] or -1,
                        "%.2f" % r["invoke_ms"] if r["invoke_ms"] else "-", r["peak_rss_kb"],
                        r["answer"] or r["error"] or r["exit"]))
        wall = time.monotonic() - w0
        own1 = os.times()
        own = (own1.user - own0.user) + (own1.system - own0.system)
        busy = (cpu_busy_jiffies() - b0) / tck
        foreign = max(0.0, (busy - child_cpu - own) / (wall * ncpu) * 100)
    finally:
        for fd in log_fds.values():
            os.close(fd)

    summ = [summarize(t) for t in targets]
    print("lambda_init: %d runs per target after %d warm-up, %d MB, region %s, AWS_ENDPOINT_URL=%s%s"
          % (args.runs, args.warmup, args.memory, args.region, endpoint,
             ", CPU quota cgroup %s" % (args.cgroup or args.cgroup_at_invoke)
             if args.cgroup or args.cgroup_at_invoke else ""))
    if wall >= 1.0:
        print("CPU taken by other processes during the runs: %.1f%% of the machine (over %.1f s)"
              % (foreign, wall))
    else:
        print("CPU taken by other processes: not measured (runs took only %.2f s)" % wall)
        foreign = None
    print()
    print("| target | ok | init ms med / p90 / min / max | first request ms med / p90 / min / max "
          "| init+first ms med | CPU ms med / p90 / min / max | peak RSS MiB med / p90 / min / max "
          "| RSS at /next MiB med |")
    print("|---|---|---|---|---|---|---|---|")
    for s in summ:
        print("| %s | %d/%d | %s | %s | %s | %s | %s | %s |" % (
            s["label"], s["ok"], s["runs"], fmt(s["init_ms"]), fmt(s["invoke_ms"]),
            "%.2f" % s["total_ms"]["median"] if s["total_ms"] else "-",
            fmt(s["cpu_ms"], 1, 1), fmt(s["peak_rss_kb"], 1024, 1),
            "%.1f" % (s["rss_at_next_kb"]["median"] / 1024) if s["rss_at_next_kb"] else "-"))
    print()
    for s in summ:
        print("%s: %s; event %s; answers: %s" % (s["label"], s["path"], s["event"],
                                               answers_seen(s["answers"])))
        if any(a[:1] == "5" for a in s["answers"]):
            print("  WARNING: %s answered 5xx: its figures are those of a function that is not set up "
                  "(KMS key, ciphertext, DynamoDB table, endpoint?)" % s["label"])
        for f in s["failures"]:
            print("  FAILED run: %s" % f)
        if s["failures"]:
            try:
                with open(os.path.join(logs, "%s.log" % s["label"]), "rb") as f:
                    tail = f.read()[-600:].decode("utf-8", "replace").strip().splitlines()[-6:]
                if tail:
                    print("  log tail: " + " | ".join(tail))
            except OSError:
                pass
    floor = next((s for s in summ if s["label"] == "floor"), None)
    if floor and floor["init_ms"] and len(summ) > 1:
        print()
        print("| ratio to floor (medians) | init | first request | init+first | CPU | peak RSS |")
        print("|---|---|---|---|---|---|")
        for s in summ:
            if s is floor or not s["init_ms"]:
                continue
            print("| %s | x%.2f | x%.2f | x%.2f | x%.2f | x%.2f |" % (
                s["label"], s["init_ms"]["median"] / floor["init_ms"]["median"],
                s["invoke_ms"]["median"] / floor["invoke_ms"]["median"],
                s["total_ms"]["median"] / floor["total_ms"]["median"],
                s["cpu_ms"]["median"] / floor["cpu_ms"]["median"],
                s["peak_rss_kb"]["median"] / floor["peak_rss_kb"]["median"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "endpoint": endpoint, "foreign_cpu_pct": foreign,
                       "summary": summ,
                       "runs": {t.label: t.runs for t in targets},
                       "warmup": {t.label: t.warm for t in targets}}, f, indent=1, default=str)
    all_ok = all(s["ok"] == s["runs"] for s in summ) and all(
        r["outcome"] == "ok" for t in targets for r in t.warm)
    if args.logs:
        print("logs (stdout/stderr of each target): %s" % logs)
    if args.logs or all_ok:
        shutil.rmtree(home, ignore_errors=True)
    else:
        print("logs kept (a run failed): %s" % home)
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
