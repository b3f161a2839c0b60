#!/usr/bin/env python3
"""Run by exporter.sh inside the benchmark's namespace: scrapes the agent's
/metrics and node_exporter's in turns and prints, per exporter, latency and
CPU per scrape. CPU is read from the kernel's own accounting: for the agent,
the nanoseconds its exporter thread spent on a CPU (/proc/PID/task/TID/
schedstat), which is every scrape's whole cost and nothing of its ticks;
for node_exporter, whose scrapes run on any of its threads, the whole
process's utime+stime (10 ms steps, enough over hundreds of 30 ms scrapes),
less what it spends idle over the same time, measured first.

Usage: scrape.py SCRAPES AGENT_PID AGENT_PORT NE_PID NE_PORT"""
import json
import os
import socket
import statistics
import sys
import time

SCRAPES, AGENT_PID, AGENT_PORT, NE_PID, NE_PORT = map(int, sys.argv[1:6])
TICK = os.sysconf("SC_CLK_TCK")


def scrape(port):
    """One GET /metrics over HTTP/1.0: wall seconds and body bytes."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n")
        chunks = []
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    body = b"".join(chunks)
    assert body.startswith(b"HTTP/1.") and b" 200 " in body[:16], body[:200]
    return time.perf_counter() - started, len(body) - body.index(b"\r\n\r\n") - 4


def process_cpu(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def exporter_thread(pid):
    for tid in os.listdir(f"/proc/{pid}/task"):
        if open(f"/proc/{pid}/task/{tid}/comm").read().strip().startswith("hopwatch-export"):
            return tid
    raise SystemExit("the agent has no hopwatch-exporter thread: is [output.prometheus] on?")


def thread_cpu(pid, tid):
    return int(open(f"/proc/{pid}/task/{tid}/schedstat").read().split()[0]) / 1e9


tid = exporter_thread(AGENT_PID)
for _ in range(5):
    scrape(AGENT_PORT)
    scrape(NE_PORT)

# node_exporter's idle CPU rate (its runtime's timers and GC).
idle0, t0 = process_cpu(NE_PID), time.perf_counter()
time.sleep(3)
ne_idle_rate = (process_cpu(NE_PID) - idle0) / (time.perf_counter() - t0)

lat = {"agent": [], "ne": []}
size = {}
agent_cpu = 0.0
ne_cpu = 0.0
ne_wall = 0.0
for _ in range(SCRAPES):
    c0 = thread_cpu(AGENT_PID, tid)
    wall, size["agent"] = scrape(AGENT_PORT)
    agent_cpu += thread_cpu(AGENT_PID, tid) - c0
    lat["agent"].append(wall)

    n0, w0 = process_cpu(NE_PID), time.perf_counter()
    wall, size["ne"] = scrape(NE_PORT)
    ne_cpu += process_cpu(NE_PID) - n0
    ne_wall += time.perf_counter() - w0
    lat["ne"].append(wall)

# node_exporter's CPU is read whole-process right after each scrape, but
# its last stats may land a little later: read once more after a pause and
# take what it spent meanwhile beyond idle.
settle0 = process_cpu(NE_PID)
time.sleep(1)
ne_cpu += max(0.0, process_cpu(NE_PID) - settle0 - ne_idle_rate)
ne_cpu -= ne_idle_rate * ne_wall


def q(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


result = {
    "scrapes": SCRAPES,
    "agent": {
        "p50_ms": q(lat["agent"], 0.5) * 1e3,
        "p95_ms": q(lat["agent"], 0.95) * 1e3,
        "cpu_ms": agent_cpu / SCRAPES * 1e3,
        "bytes": size["agent"],
    },
    "node_exporter": {
        "p50_ms": q(lat["ne"], 0.5) * 1e3,
        "p95_ms": q(lat["ne"], 0.95) * 1e3,
        "cpu_ms": ne_cpu / SCRAPES * 1e3,
        "bytes": size["ne"],
        "idle_cpu_ms_per_s": ne_idle_rate * 1e3,
    },
}
print(json.dumps(result))
