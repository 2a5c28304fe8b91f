#!/usr/bin/env python3
"""The store's fault handling measured from outside, against the release server: guess limits
under concurrency and from many prefixes, a database deleted or replaced under the running
server, and what /healthz and the routes answer while another process holds the write lock.
Loopback only; bounded in count and time.

    cargo build --release -p monzo-auth-server
    python3 scripts/store-faults.py [--server target/release/monzo-auth-server]

The server runs `--demo` on a fresh SQLite store under target/ with TRUSTED_PROXIES=127.0.0.1,
so each request's X-Forwarded-For stands for a client address (the way a reverse proxy would
pass it on): one machine plays many networks.
"""

import argparse
import concurrent.futures
import http.cookiejar
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Server:
    def __init__(self, binary, directory):
        self.db = os.path.join(directory, "store.db")
        self.log_path = os.path.join(directory, "server.log")
        env = {
            "PATH": os.environ["PATH"],
            "LISTEN_ADDR": "127.0.0.1:0",
            "STORE": f"sqlite:{self.db}",
            "TRUSTED_PROXIES": "127.0.0.1",
            "RUST_LOG": "warn",
        }
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [binary, "--demo"], env=env, stdout=subprocess.PIPE, stderr=self.log, text=True
        )
        first = self.process.stdout.readline()
        self.base = "http://" + re.search(r"listening on (\S+);", first).group(1) + "/"

    def request(self, method, path, body=None, headers=None, timeout=30):
        data = urllib.parse.urlencode(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers or {})
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return answer.status, answer.read().decode(), answer.headers, time.monotonic() - started
        except urllib.error.HTTPError as answer:
            return answer.code, answer.read().decode(), answer.headers, time.monotonic() - started

    def log_lines(self, needle):
        self.log.flush()
        with open(self.log_path) as f:
            return sum(needle in line for line in f)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


def type_code(server, code, address):
    """One person at /device typing `code`, from `address`: the status of the answer."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    headers = {"X-Forwarded-For": address}
    page = opener.open(urllib.request.Request(server.base + "device", headers=headers), timeout=30).read().decode()
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"csrf": csrf, "user_code": code}).encode()
    try:
        with opener.open(urllib.request.Request(server.base + "device", data=body, headers=headers), timeout=30) as a:
            return a.status
    except urllib.error.HTTPError as answer:
        return answer.code


def tally(statuses):
    counts = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{status}: {n}" for status, n in sorted(counts.items()))


def guess_limits(server, out):
    wrong = "BBBB-BBBB"
    with concurrent.futures.ThreadPoolExecutor(max_workers=200) as pool:
        statuses = list(pool.map(lambda _: type_code(server, wrong, "198.51.100.7"), range(200)))
    out.append(("200 concurrent wrong codes from one address (limit 10)", tally(statuses),
                f"{statuses.count(400)} checked"))
    addresses = [f"2001:db8:1:{n:x}::1" for n in range(101) for _ in range(10)]
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
        statuses = list(pool.map(lambda a: type_code(server, wrong, a), addresses))
    out.append(("1,010 wrong codes from 101 /64s of one /48 (network limit 30)", tally(statuses),
                f"{statuses.count(400)} checked in {time.monotonic() - started:.1f} s"))
    status, body, _, _ = server.request("POST", "device/code", {"client_id": "faults"})
    user_code = json.loads(body)["user_code"]
    right = type_code(server, user_code, "2001:db8:2::1")
    out.append(("then a right code from another /48", str(right),
                "confirmation page" if right == 200 else "refused"))


def vanished(server, out):
    assert server.request("POST", "new")[0] == 200
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(server.db + suffix):
            os.remove(server.db + suffix)
    first = server.request("POST", "new")
    health = server.request("GET", "healthz")
    out.append(("POST /new after the database file was deleted", str(first[0]),
                f"Retry-After {first[2].get('Retry-After')}; /healthz {health[0]}"))
    again = server.request("POST", "new")
    lines = server.log_lines("sessions only in the old file are lost")
    out.append(("the next POST /new", str(again[0]),
                f"file there again: {os.path.exists(server.db)}; log lines saying sessions were lost: {lines}"))
    directory = os.path.dirname(server.db)
    saved = directory + ".moved"
    os.rename(directory, saved)
    gone = server.request("POST", "new")
    os.makedirs(directory)
    shutil.move(os.path.join(saved, "server.log"), os.path.join(directory, "server.log"))
    shutil.rmtree(saved)
    back = server.request("POST", "new")
    out.append(("POST /new with the directory gone, then back", f"{gone[0]}, then {back[0]}", ""))
    other = os.path.join(directory, "other.db")
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    os.replace(other, server.db)
    replaced = server.request("POST", "new")
    health = server.request("GET", "healthz")
    out.append(("POST /new after the file was replaced by another database", str(replaced[0]),
                f"/healthz {health[0]}"))
    server.request("POST", "new")


def locked(server, out):
    status, body, _, _ = server.request("POST", "new")
    poll_id = json.loads(body)["id"]
    holder = sqlite3.connect(server.db, timeout=1, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        health = server.request("GET", "healthz")
        poll = server.request("POST", "token", {"id": poll_id})
        write = server.request("POST", "new")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    out.append(("another process holds the write lock: /healthz", str(health[0]), f"{health[3] * 1000:.1f} ms"))
    out.append(("  a pending POST /token (a read)", str(poll[0]), f"{poll[3] * 1000:.1f} ms"))
    out.append(("  POST /new (a write)", str(write[0]),
                f"after {write[3]:.1f} s (the busy timeout); Retry-After {write[2].get('Retry-After')}"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=os.path.join(ROOT, "target/release/monzo-auth-server"))
    args = parser.parse_args()
    os.makedirs(os.path.join(ROOT, "target"), exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="store-faults-", dir=os.path.join(ROOT, "target"))
    directory = os.path.join(scratch, "store")
    os.makedirs(directory)
    out = []
    server = Server(args.server, directory)
    try:
        guess_limits(server, out)
        locked(server, out)
        vanished(server, out)
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    print("| what | answers | notes |\n|---|---|---|")
    for what, answers, notes in out:
        print(f"| {what} | {answers} | {notes} |")


if __name__ == "__main__":
    main()
