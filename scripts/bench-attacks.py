#!/usr/bin/env python3
"""Slow and greedy clients against the local server, measured by their effect on an honest
client and on the server's memory. Loopback only; every attack is bounded in count and time.

    cargo build --release -p monzo-auth-server
    python3 scripts/bench-attacks.py [--server target/release/monzo-auth-server] [--port 39102]

Starts `monzo-auth-server --demo` (memory store) under `ulimit -n 1024`, then for each attack
times an honest `POST /new` on a fresh connection (20 of them, one after another, while the attack
runs) and reads the server's resident memory before and after:

- drip: 400 connections each sending a request head a byte every 4 s, for 30 s;
- big heads: 300 connections each sending 300 KB of header, then nothing;
- idle flood: 1,100 connections that send nothing (more than the server's 1,024 descriptors);
- huge length: one request declaring Content-Length 99999999999 and sending nothing.
"""

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import time

HONEST = 20
SERVER_PID = 0


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def honest(port, timeout=30.0):
    """Milliseconds to the status line of a POST /new on a fresh connection, or None."""
    started = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        writer.write(f"POST /new HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout - (time.monotonic() - started))
        writer.close()
        if not line.startswith(b"HTTP/1.1 200"):
            return None
        return (time.monotonic() - started) * 1000
    except (OSError, asyncio.TimeoutError):
        return None


async def honest_series(port):
    times = []
    for _ in range(HONEST):
        times.append(await honest(port))
        await asyncio.sleep(0.2)
    return times


def summary(times):
    answered = [t for t in times if t is not None]
    if not answered:
        return "never answered"
    answered.sort()
    p95 = answered[min(len(answered) - 1, int(len(answered) * 0.95))]
    return (
        f"{len(answered)}/{len(times)} answered, median {statistics.median(answered):.1f} ms, "
        f"p95 {p95:.1f} ms, max {answered[-1]:.1f} ms"
    )


async def open_many(port, count):
    streams = []
    for _ in range(count):
        try:
            streams.append(await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2))
        except (OSError, asyncio.TimeoutError):
            break
    return streams


async def still_open(streams):
    """How many of `streams` the server has not closed (whatever it answered first)."""
    alive = 0
    for reader, _ in streams:
        try:
            while await asyncio.wait_for(reader.read(65536), 0.05):
                pass
        except asyncio.TimeoutError:
            alive += 1
        except OSError:
            pass
    return alive


async def drip(port):
    streams = await open_many(port, 400)
    head = f"POST /new HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Padding: ".encode()
    for _, writer in streams:
        writer.write(head)

    async def keep_dripping():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for _, writer in streams:
                try:
                    writer.write(b"a")
                except (OSError, RuntimeError):
                    pass
            await asyncio.sleep(4)

    dripping = asyncio.create_task(keep_dripping())
    times = await honest_series(port)
    await dripping
    return times, await wind_up(streams, "dripping connections still open after 30 s")


async def big_heads(port):
    streams = await open_many(port, 300)
    head = f"POST /new HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Padding: ".encode() + b"a" * 300_000
    for _, writer in streams:
        writer.write(head)
    await asyncio.sleep(2)
    times = await honest_series(port)
    return times, await wind_up(streams, "still open")


async def idle_flood(port):
    streams = await open_many(port, 1100)
    await asyncio.sleep(1)
    times = await honest_series(port)
    return times, await wind_up(streams, "still open")


async def huge_length(port):
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST /token HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        "Content-Length: 99999999999\r\n\r\n".encode()
    )
    try:
        line = await asyncio.wait_for(reader.readline(), 30)
    except asyncio.TimeoutError:
        line = b"(no answer in 30 s)"
    elapsed = (time.monotonic() - started) * 1000
    writer.close()
    return [await honest(port)], f"answered {line.decode().strip()!r} in {elapsed:.1f} ms"


async def wind_up(streams, what):
    """What is left of an attack: how many of its connections are open, and the server's memory
    while they were; then closes them."""
    alive = await still_open(streams)
    during = rss_kib(SERVER_PID)
    close_all(streams)
    return f"{alive} of {len(streams)} {what}; RSS during {during} KiB"


def close_all(streams):
    for _, writer in streams:
        writer.close()


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="target/release/monzo-auth-server")
    parser.add_argument("--port", type=int, default=39102)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    env = {"PATH": os.environ.get("PATH", ""), "LISTEN_ADDR": f"127.0.0.1:{args.port}", "STORE": "memory"}
    server = subprocess.Popen(
        ["sh", "-c", 'ulimit -n 1024 && exec "$0" --demo', args.server],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    server.stdout.readline()  # the banner
    global SERVER_PID
    SERVER_PID = server.pid
    try:
        print(f"baseline: {summary(await honest_series(args.port))}; RSS {rss_kib(server.pid)} KiB")
        for name, attack in [("drip", drip), ("big heads", big_heads), ("idle flood", idle_flood), ("huge length", huge_length)]:
            before = rss_kib(server.pid)
            times, what = await attack(args.port)
            after = rss_kib(server.pid)
            print(f"{name}: honest {summary(times)}; {what}; RSS {before} -> {after} KiB")
            await asyncio.sleep(1)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
