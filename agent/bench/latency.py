#!/usr/bin/env python3
# How long hopwatch takes to say what happened: runs the agent on one end of
# a veth, makes a counter jump or the link drop at a recorded time, and times
# the matching JSON line on the agent's stdout. Run by agent/bench/agent.sh inside
# the agent's namespace (so the UDP burst leaves from the watched interface).
"""Alert and link latency of a running hopwatch agent; see agent/bench/README.md."""

import argparse
import json
import os
import queue
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--agent", required=True, help="the hopwatch binary")
    p.add_argument("--config", required=True, help="the agent's config file")
    p.add_argument("--socket", required=True, help="the agent's control socket")
    p.add_argument("--interface", required=True, help="the watched interface (this namespace)")
    p.add_argument("--target", required=True, help="the peer's address, where the burst goes")
    p.add_argument("--peer-netns", required=True, help="the namespace holding the peer")
    p.add_argument("--peer", required=True, help="the peer interface, set down and up")
    p.add_argument("--interval", type=float, required=True, help="the agent's tick, seconds")
    p.add_argument("--burst", type=int, default=10, help="datagrams per burst (rule: > 3 in 5s)")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--stderr", required=True, help="file for the agent's log")
    p.add_argument("--json-out", required=True, help="file for the summary figures")
    return p.parse_args()


class Agent:
    """The agent as a child whose stdout lines are timestamped on arrival."""

    def __init__(self, args):
        self.log = open(args.stderr, "wb")
        self.proc = subprocess.Popen(
            [args.agent, "run", "-c", args.config],
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in iter(self.proc.stdout.readline, b""):
            at = time.monotonic()
            try:
                self.lines.put((at, json.loads(line)))
            except ValueError:
                continue

    def drain(self):
        while True:
            try:
                self.lines.get_nowait()
            except queue.Empty:
                return

    def wait_for(self, match, timeout):
        """The arrival time of the first event matching `match`, or None."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                at, event = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if match(event):
                return at

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def alert(state, interface):
    return lambda e: (
        e.get("type") == "alert" and e.get("state") == state and e.get("interface") == interface
    )


def link(state, interface):
    return lambda e: (
        e.get("type") == "link" and e.get("state") == state and e.get("interface") == interface
    )


def spread(values_ms):
    if not values_ms:
        return None
    return {
        "n": len(values_ms),
        "min": min(values_ms),
        "median": statistics.median(values_ms),
        "max": max(values_ms),
    }


def show(label, values_ms, target_ms):
    s = spread(values_ms)
    if s is None:
        print(f"  {label}: no measurement")
        return
    verdict = "meets" if s["max"] <= target_ms else "MISSES"
    print(
        f"  {label}: min {s['min']:.1f} ms, median {s['median']:.1f} ms, max {s['max']:.1f} ms "
        f"over {s['n']} ({verdict} target <= {target_ms:.0f} ms)"
    )


def main():
    args = parse_args()
    # agent/bench/agent.sh stops this script with SIGTERM; the agent must go too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    interval_ms = args.interval * 1000
    agent = Agent(args)
    results = {"interval_ms": interval_ms, "errors": []}
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(args.socket):
            if time.monotonic() > deadline or agent.proc.poll() is not None:
                raise SystemExit(f"the agent did not start; see {args.stderr}")
            time.sleep(0.05)
        # The rule needs one tick to have a baseline before a delta exists.
        time.sleep(2 * args.interval + 0.1)

        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Resolve the peer's MAC now, so the burst is only the datagrams.
        sock.sendto(b"hopwatch bench", (args.target, 9))
        time.sleep(6)

        print(f"alert latency: {args.burst} UDP datagrams leave {args.interface} at a random "
              f"point of the {interval_ms:.0f} ms tick; time to the firing line")
        alert_ms = []
        for i in range(args.repeats):
            # A random phase, so the figures sample the whole tick.
            time.sleep(random.uniform(0, args.interval))
            agent.drain()
            sent = time.monotonic()
            for _ in range(args.burst):
                sock.sendto(b"hopwatch bench", (args.target, 9))
            fired = agent.wait_for(alert("firing", args.interface), 3 * args.interval + 5)
            if fired is None:
                results["errors"].append(f"alert {i + 1}: no firing line")
                print(f"    {i + 1:2}: no firing line")
                continue
            alert_ms.append((fired - sent) * 1000)
            print(f"    {i + 1:2}: {alert_ms[-1]:7.1f} ms")
            if agent.wait_for(alert("resolved", args.interface), 5 + 5 * args.interval) is None:
                results["errors"].append(f"alert {i + 1}: never resolved")

        print(f"link latency: `ip -n {args.peer_netns} link set {args.peer} down` (then up); "
              f"time from just before the command starts to the {args.interface} link line")
        down_ms, up_ms, command_ms = [], [], []
        for i in range(args.repeats):
            for state, into in (("down", down_ms), ("up", up_ms)):
                time.sleep(random.uniform(0.1, 0.4))
                agent.drain()
                started = time.monotonic()
                subprocess.run(
                    ["ip", "-n", args.peer_netns, "link", "set", args.peer, state], check=True
                )
                command_ms.append((time.monotonic() - started) * 1000)
                seen = agent.wait_for(link(state, args.interface), 5)
                if seen is None:
                    results["errors"].append(f"link {state} {i + 1}: no line")
                    print(f"    {i + 1:2} {state:4}: no line")
                    continue
                into.append((seen - started) * 1000)
                print(f"    {i + 1:2} {state:4}: {into[-1]:7.1f} ms")
    finally:
        agent.stop()

    print()
    print(f"latency summary (tick interval {interval_ms:.0f} ms)")
    show("alert: burst -> firing line", alert_ms, interval_ms + 50)
    show("link:  peer down -> down line", down_ms, 50)
    show("link:  peer up -> up line    ", up_ms, 50)
    c = spread(command_ms)
    if c:
        print(f"  (the `ip link set` command itself took {c['min']:.1f}..{c['max']:.1f} ms, "
              f"median {c['median']:.1f}; the link figures include it)")
    for error in results["errors"]:
        print(f"  error: {error}")
    results.update(alert=spread(alert_ms), link_down=spread(down_ms), link_up=spread(up_ms),
                   ip_command=c)
    with open(args.json_out, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
