#!/usr/bin/env python3
"""`make bench`: the release server on a fresh SQLite store on this disk, with the demo's stand-in
for Monzo, measured path by path. Loopback only, bounded in time (DURATION seconds a series, 10 by
default; CONNECTIONS, 64). Prints the disk's fsync latency and one table: requests a second, p50
and p99 latency, and the server's RSS after each series; the last row is complete logins a second
(`login-driver`: new, the stand-in's approval, callback, token). Measures; asserts nothing.

Needs `target/release/monzo-auth-server` and `target/release/login-driver` (make bench builds
both) and wrk (make bench installs Debian's); `MONZO_AUTH_SERVER=PATH python3 scripts/bench.py`
measures another build of the server the same way.
"""

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# MONZO_AUTH_SERVER: another build to measure the same way (an older commit's, say).
SERVER = os.environ.get("MONZO_AUTH_SERVER") or os.path.join(ROOT, "target", "release", "monzo-auth-server")
DRIVER = os.path.join(ROOT, "target", "release", "login-driver")
DURATION = int(os.environ.get("DURATION", "10"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "64"))
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def filesystem_of(path):
    """The mount's filesystem type for `path` (the longest mount point that contains it)."""
    best, kind = "", "?"
    with open("/proc/mounts") as mounts:
        for line in mounts:
            _, point, fstype = line.split()[:3]
            if os.path.realpath(path).startswith(point) and len(point) > len(best):
                best, kind = point, fstype
    return kind


def fsync_latency(directory, rounds=200):
    """Median and p99 of writing 4 KiB and fsyncing it, in ms."""
    path = os.path.join(directory, "fsync-probe")
    timings = []
    with open(path, "wb") as probe:
        for _ in range(rounds):
            started = time.perf_counter()
            probe.write(os.urandom(4096))
            probe.flush()
            os.fsync(probe.fileno())
            timings.append((time.perf_counter() - started) * 1000)
    os.remove(path)
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.99) - 1]


def rss_mib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def post(base, path, body):
    request = urllib.request.Request(
        base + path,
        data=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return json.loads(err.read())


def to_ms(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url, body, workdir):
    """One wrk series POSTing `body` to `url`: (req/s, p50 ms, p99 ms, non-2xx/3xx answers)."""
    script = os.path.join(workdir, "post.lua")
    with open(script, "w") as lua:
        lua.write(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(body)}\n"
            'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
        )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--latency", "-s", script, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    odd = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rate, p50, p99, int(odd.group(1)) if odd else 0


def main():
    for binary in (SERVER, DRIVER):
        if not os.access(binary, os.X_OK):
            sys.exit(f"bench: {binary} is missing: run `make bench` (it builds it)")
    if not shutil.which("wrk"):
        sys.exit("bench: wrk is missing: run `make bench` (it installs Debian's)")
    # On this disk, next to the build, not in /tmp (often tmpfs, where fsync costs nothing).
    os.makedirs(os.path.join(ROOT, "target"), exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="bench-", dir=os.path.join(ROOT, "target"))
    fstype = filesystem_of(workdir)
    if fstype in ("tmpfs", "ramfs"):
        sys.exit(f"bench: {workdir} is on {fstype}; durable writes would cost nothing there")
    fsync_p50, fsync_p99 = fsync_latency(workdir)
    print(f"disk: {fstype} at {workdir}; fsync of 4 KiB: p50 {fsync_p50:.2f} ms, p99 {fsync_p99:.2f} ms")

    env = {
        "PATH": os.environ.get("PATH", ""),
        "LISTEN_ADDR": "127.0.0.1:0",
        "STORE": "sqlite:" + os.path.join(workdir, "sessions.db"),
        "RUST_LOG": "warn",
    }
    server = subprocess.Popen(
        [SERVER, "--demo"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        first = server.stdout.readline()
        addr = re.search(r"listening on (\S+?);", first).group(1)
        base = f"http://{addr}/"
        rows = []

        def series(label, path, body):
            rate, p50, p99, odd = wrk(base + path, body, workdir)
            rows.append((label, f"{rate:,.0f}", f"{p50:.2f}", f"{p99:.2f}", f"{rss_mib(server.pid):.1f}", str(odd)))

        series("`POST /new`", "new", "")
        pending = post(base, "new", "")["id"]
        series("`POST /token`, pending", "token", f"id={pending}")
        series("`POST /device/code`", "device/code", "client_id=bench")
        device = post(base, "device/code", "client_id=bench")["device_code"]
        series(
            "`POST /oauth/token`, pending (400 pending / slow_down)",
            "oauth/token",
            f"grant_type={DEVICE_GRANT}&device_code={device}&client_id=bench",
        )
        driven = json.loads(
            subprocess.run(
                [DRIVER, base, "32", str(DURATION)], capture_output=True, text=True, check=True
            ).stdout
        )
        rows.append(
            (
                "complete logins (new, approve, callback, token; 32 at a time)",
                f"{driven['per_sec']:,.0f}",
                f"{driven['p50_ms']:.2f}",
                f"{driven['p99_ms']:.2f}",
                f"{rss_mib(server.pid):.1f}",
                str(driven["failures"]),
            )
        )
        peak = rss_mib(server.pid, "VmHWM")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\n{CONNECTIONS} connections, {DURATION} s a series, wrk -t2; server peak RSS {peak:.1f} MiB\n")
    print("| path | req/s | p50 ms | p99 ms | RSS MiB | odd answers |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
