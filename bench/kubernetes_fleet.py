#!/usr/bin/env python3
"""Fleet driver and probes for bench/kubernetes-mode.sh (Kubernetes mode, product default timings).

Given a running API (DGON_REGISTRY=kubernetes), operator and Kubernetes API (kubeconfig), it
  1. creates one join token (admin API) and registers NODES nodes with it (no key: a join token alone enrolls);
  2. heartbeats every node with seed 001's dev agent's v1 HMAC (hex HMAC-SHA256(token, body || ts)), ready=true,
     fixed metrics, timestamps strictly increasing per node; --schedule seed sleeps the interval after each request
     (seed 001's agent), --schedule fixed sends one per interval on the clock (agent/'s PeriodicTimer);
  3. waits until every DgonNode is Active, lets the fleet settle, then for STEADY seconds samples
     `kubectl get dgn -o json` about once a second (staleness = sample time - status.lastHeartbeatTime) while the
     status-write counters of the API and the operator (/metrics) are read at both ends of the window;
     With --follow-interval every node keeps the longer of --interval and the heartbeat_interval_s the API tells it
     (issue 11, as agent/ does); the told intervals, the API's heartbeat status writes per second against
     --budget (DGON_STATUS_WRITES_PER_SECOND) and the gauges dgon_kubernetes_status_writes_pending and
     dgon_kubernetes_status_write_lag_seconds (sampled every second) are printed;
  4. (unless --offline-timeout 0) stops one node's heartbeats right after an accepted one (send time T) and polls
     `kubectl get dgn <id> -o jsonpath={.status.phase}` every 0.25 s until it reads Offline; reports (seen - T) and
     the operator's Event about it.
Everything is printed, nothing is asserted. Exit code 1 only when the setup itself fails (a node cannot register,
nodes never become Active).
"""

import argparse
import datetime as dt
import hashlib
import hmac
import json
import re
import statistics
import subprocess
import sys
import threading
import time

import requests

SAMPLE_LINE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def log(msg):
    print(f"[fleet {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def counters(url, name, label):
    """Sum of every sample of counter `name` at `url`, keyed by the value of `label` ("" when absent)."""
    text = requests.get(url, timeout=10).text
    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = SAMPLE_LINE.match(line)
        if not m or m.group("name") != name:
            continue
        labels = dict(LABEL.findall(m.group("labels") or ""))
        key = labels.get(label, "")
        out[key] = out.get(key, 0.0) + float(m.group("value"))
    return out


def delta(after, before):
    return {k: after.get(k, 0.0) - before.get(k, 0.0) for k in sorted(set(after) | set(before)) if after.get(k, 0.0) - before.get(k, 0.0)}


def parse_time(text):
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def pct(values, q):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Node:
    def __init__(self, api, node_id, token, interval, schedule, follow=False):
        self.api, self.id, self.token, self.interval, self.schedule = api, node_id, token, interval, schedule
        self.follow = follow
        self.told = None  # last heartbeat_interval_s the API answered
        self.session = requests.Session()
        self.last_ts = 0
        self.stop = threading.Event()
        self.stopped = threading.Event()
        self.last_ok_send = None  # wall time just before the last heartbeat that got 200
        self.last_ok_ts = None
        self.sent = 0
        self.failed = 0
        self.last_error = ""

    def heartbeat(self):
        ts = max(int(time.time()), self.last_ts + 1)  # strictly increasing: the replay rule
        self.last_ts = ts
        body = json.dumps({"gpu_util": 0.4, "mem_used_gb": 6.0, "p95_ms": 320, "ready": True}).encode()
        mac = hmac.new(self.token.encode(), body + str(ts).encode(), hashlib.sha256).hexdigest()
        headers = {"X-Node-Id": self.id, "X-Node-Ts": str(ts), "X-Node-Auth": mac, "Content-Type": "application/json"}
        sent_at = time.time()
        try:
            r = self.session.post(f"{self.api}/v1/nodes/heartbeat", data=body, headers=headers, timeout=10)
            ok = r.status_code == 200
            if not ok:
                self.last_error = f"{r.status_code} {r.text[:200]}"
            else:
                self.told = r.json().get("heartbeat_interval_s", self.told)
        except requests.RequestException as e:
            ok, self.last_error = False, str(e)
        self.sent += 1
        if ok:
            self.last_ok_send, self.last_ok_ts = sent_at, ts
        else:
            self.failed += 1
        return ok

    def run(self, first_delay):
        if self.stop.wait(first_delay):
            self.stopped.set()
            return
        due = time.monotonic()
        while not self.stop.is_set():
            self.heartbeat()
            # agent/: a longer told interval is followed, a shorter one never.
            interval = max(self.interval, self.told or 0) if self.follow else self.interval
            if self.schedule == "fixed":
                # agent/'s PeriodicTimer: one heartbeat every interval on the clock.
                due += interval
                wait = max(0.0, due - time.monotonic())
            else:
                # Seed 001's agent: one heartbeat, then time.sleep(10).
                wait = interval
            if self.stop.wait(wait):
                break
        self.stopped.set()


def kubectl(args, kubeconfig, namespace):
    p = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "-n", namespace, *args], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {p.stderr.strip()}")
    return p.stdout


def main():
    a = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("--api", required=True)
    a.add_argument("--operator", required=True)
    a.add_argument("--admin-token", required=True)
    a.add_argument("--kubeconfig", required=True)
    a.add_argument("--namespace", default="dgon")
    a.add_argument("--nodes", type=int, default=20)
    a.add_argument("--interval", type=float, default=10.0, help="heartbeat interval in seconds (both agents: 10)")
    a.add_argument("--schedule", choices=["seed", "fixed"], default="seed",
                   help="seed: sleep the interval after each heartbeat (seed 001's agent); fixed: one per interval on the clock (agent/)")
    a.add_argument("--grace", type=float, default=30.0, help="the API's and operator's grace (printed only)")
    a.add_argument("--refresh", type=float, default=10.0, help="the status refresh interval (printed only)")
    a.add_argument("--settle", type=float, default=12.0, help="seconds after all are Active before the steady window")
    a.add_argument("--steady", type=float, default=60.0, help="steady window: status-write counting and kubectl sampling")
    a.add_argument("--offline-timeout", type=float, default=90.0, help="0: skip the offline probe")
    a.add_argument("--follow-interval", action="store_true", help="keep the longer of --interval and the told heartbeat_interval_s (agent/)")
    a.add_argument("--budget", type=float, default=500.0, help="the API's DGON_STATUS_WRITES_PER_SECOND (printed only)")
    a.add_argument("--trace", action="store_true", help="print the first node's figures at every sample")
    o = a.parse_args()
    api_metrics, op_metrics = f"{o.api}/metrics", f"{o.operator}/metrics"
    name = "dgon_kubernetes_status_writes_total"

    # ---- join token, registration ----
    r = requests.post(f"{o.api}/v1/admin/join-tokens", timeout=10, headers={"Authorization": f"Bearer {o.admin_token}"},
                      json={"ttl_seconds": 3600, "max_uses": o.nodes, "description": "bench/kubernetes-mode.sh"})
    if r.status_code != 201:
        log(f"create join token -> {r.status_code} {r.text}")
        return 1
    join = r.json()["token"]
    nodes = []
    t0 = time.time()
    for i in range(o.nodes):
        node_id = f"bench-{i:03d}"
        r = requests.post(f"{o.api}/v1/nodes/register", timeout=30, headers={"Authorization": f"Bearer {join}"},
                          json={"node_id": node_id, "region": "local", "runtime": "ollama", "asn_hint": "residential",
                                "wallet_address": "", "green_energy": False})
        if r.status_code != 200:
            log(f"register {node_id} -> {r.status_code} {r.text}")
            return 1
        nodes.append(Node(o.api, node_id, r.json()["node_token"], o.interval, o.schedule, o.follow_interval))
    log(f"registered {len(nodes)} nodes in {time.time() - t0:.1f} s")

    # Spread the first heartbeats over one interval, as independently started agents would be.
    threads = [threading.Thread(target=n.run, args=(o.interval * i / len(nodes),), daemon=True) for i, n in enumerate(nodes)]
    for t in threads:
        t.start()

    # Every first heartbeat changes the operator's decision; under a small budget they take nodes / budget seconds.
    deadline = time.time() + o.interval + 60 + len(nodes) / o.budget
    while True:
        items = json.loads(kubectl(["get", "dgn", "-o", "json"], o.kubeconfig, o.namespace))["items"]
        active = sum(1 for it in items if (it.get("status") or {}).get("phase") == "Active")
        if active == len(nodes):
            break
        if time.time() > deadline:
            log(f"only {active}/{len(nodes)} DgonNodes Active after {o.interval + 60 + len(nodes) / o.budget:.0f} s")
            for n in nodes:
                if n.failed:
                    log(f"  {n.id}: {n.failed}/{n.sent} heartbeats failed, last: {n.last_error}")
            return 1
        time.sleep(0.5)
    log(f"all {len(nodes)} Active {time.time() - t0:.1f} s after the first registration; settling {o.settle:.0f} s")
    time.sleep(o.settle)

    # ---- (a) status writes and (b) kubectl staleness over the steady window ----
    api_before, op_before = counters(api_metrics, name, "reason"), counters(op_metrics, name, "reason")
    hb_before = counters(api_metrics, "dgon_heartbeats_total", "result")
    sent_before = sum(n.sent for n in nodes)
    w0 = time.time()
    staleness, lag, samples, kubectl_secs = [], [], 0, []
    pending, write_lag = [], []
    while time.time() - w0 < o.steady:
        started = time.time()
        gauges = requests.get(api_metrics, timeout=10).text
        for line in gauges.splitlines():
            m = SAMPLE_LINE.match(line)
            if m and m.group("name") == "dgon_kubernetes_status_writes_pending":
                pending.append(float(m.group("value")))
            elif m and m.group("name") == "dgon_kubernetes_status_write_lag_seconds":
                write_lag.append(float(m.group("value")))
        real_last = {n.id: n.last_ok_send for n in nodes}  # what each node had really sent before this read
        items = json.loads(kubectl(["get", "dgn", "-o", "json"], o.kubeconfig, o.namespace))["items"]
        seen = time.time()  # when the user sees the table
        kubectl_secs.append(seen - started)
        samples += 1
        for it in items:
            hb = (it.get("status") or {}).get("lastHeartbeatTime")
            if not hb:
                continue
            recorded = parse_time(hb)
            staleness.append(seen - recorded)
            if real_last.get(it["metadata"]["name"]):
                lag.append(max(0.0, real_last[it["metadata"]["name"]] - recorded))
            if o.trace and it["metadata"]["name"] == nodes[0].id:
                log(f"trace {nodes[0].id}: seen-recorded {seen - recorded:5.1f} s, "
                    f"last send-recorded {(real_last[nodes[0].id] or 0) - recorded:5.1f} s")
        time.sleep(max(0.0, 1.0 - (time.time() - started)))
    w1 = time.time()
    sent_in_window = sum(n.sent for n in nodes) - sent_before
    api_after, op_after = counters(api_metrics, name, "reason"), counters(op_metrics, name, "reason")
    hb_after = counters(api_metrics, "dgon_heartbeats_total", "result")
    minutes = (w1 - w0) / 60
    api_d, op_d, hb_d = delta(api_after, api_before), delta(op_after, op_before), delta(hb_after, hb_before)
    per = lambda d: sum(d.values()) / len(nodes) / minutes  # noqa: E731
    by = lambda d: ", ".join(f"{k or '-'}={v / len(nodes) / minutes:.2f}" for k, v in d.items()) or "none"  # noqa: E731

    told = sorted(n.told for n in nodes if n.told is not None)
    hb_writes = sum(v for k, v in api_d.items() if k.startswith("heartbeat"))

    # ---- (c) offline detection ----
    victim = nodes[-1]
    # Stop it right after an accepted heartbeat: wait for the next one, then stop the loop before it sends again.
    before = victim.sent
    while victim.sent == before and o.offline_timeout > 0:
        time.sleep(0.05)
    victim.stop.set()
    victim.stopped.wait(15)
    t_last = victim.last_ok_send
    log(f"{victim.id}: heartbeats stopped; last accepted one sent at {time.strftime('%H:%M:%S', time.localtime(t_last))}"
        f".{int((t_last % 1) * 1000):03d} (ts {victim.last_ok_ts})")
    offline_at, phase, polls = None, "", 0
    while time.time() - t_last < o.offline_timeout:
        polls += 1
        try:
            phase = kubectl(["get", "dgn", victim.id, "-o", "jsonpath={.status.phase}"], o.kubeconfig, o.namespace).strip()
        except RuntimeError as e:
            phase = f"error: {e}"
        if phase == "Offline":
            offline_at = time.time()
            break
        time.sleep(0.25)
    event = "none seen"
    if offline_at is not None:
        for _ in range(20):
            evs = json.loads(kubectl(["get", "events.events.k8s.io", "-o", "json"], o.kubeconfig, o.namespace))["items"]
            mine = [e for e in evs if (e.get("regarding") or {}).get("name") == victim.id and "Offline" in (e.get("note") or "")]
            if mine:
                e = mine[-1]
                event = f"{e.get('type')} {e.get('reason')} \"{e.get('note')}\""
                break
            time.sleep(0.25)
    others = json.loads(kubectl(["get", "dgn", "-o", "json"], o.kubeconfig, o.namespace))["items"]
    not_active = [it["metadata"]["name"] for it in others if it["metadata"]["name"] != victim.id
                  and (it.get("status") or {}).get("phase") != "Active"]

    failed = sum(n.failed for n in nodes)
    print()
    print("==== Kubernetes mode, default timings ====")
    how = "sleep after each heartbeat, as seed 001's agent" if o.schedule == "seed" else "fixed rate, as agent/'s PeriodicTimer"
    print(f"nodes={len(nodes)} interval={o.interval:g}s ({how}) "
          f"grace={o.grace:g}s refresh={o.refresh:g}s steady window={w1 - w0:.0f}s")
    print(f"heartbeats accepted: {hb_d.get('accepted', 0) / len(nodes) / minutes:.2f} per node per minute "
          f"(by result: {by(hb_d)}); failed in the run: {failed}")
    print(f"api status writes: {per(api_d):.2f} per node per minute (by reason: {by(api_d)}); "
          f"operator status writes: {per(op_d):.2f} per node per minute (by reason: {by(op_d)})")
    print(f"kubectl lastHeartbeatTime staleness: max {max(staleness):.1f} s, p50 {statistics.median(staleness):.1f} s, "
          f"p99 {pct(staleness, 0.99):.1f} s over {samples} samples x {len(nodes)} nodes "
          f"(kubectl get takes p50 {statistics.median(kubectl_secs):.2f} s, included)")
    print(f"recorded lastHeartbeatTime behind the node's real last heartbeat: max {max(lag):.1f} s, "
          f"p50 {statistics.median(lag):.1f} s")
    print(f"api heartbeat status writes: {hb_writes / (w1 - w0):.1f} per second (budget {o.budget:g}); "
          f"told heartbeat_interval_s: min {told[0] if told else '-'}, max {told[-1] if told else '-'} "
          f"({'followed' if o.follow_interval else 'ignored, as the seed agent'}); "
          f"pending writes: max {max(pending, default=float('nan')):g}, p50 {statistics.median(pending) if pending else float('nan'):g}; "
          f"write lag gauge: max {max(write_lag, default=float('nan')):.1f} s; "
          f"heartbeats sent by the driver: {sent_in_window / (w1 - w0):.1f} per second")
    if o.offline_timeout <= 0:
        print("offline detection: skipped (--offline-timeout 0)")
    elif offline_at is not None:
        print(f"offline detection: node {victim.id} Offline {offline_at - t_last:.1f} s after its last heartbeat "
              f"(goal <= grace + 5 = {o.grace + 5:g} s; {polls} kubectl polls, 0.25 s apart) (Event: {event})")
    else:
        print(f"offline detection: node {victim.id} NOT Offline within {o.offline_timeout:g} s (last phase read: {phase})")
    print(f"other nodes not Active at the end: {len(not_active)}{' ' + ','.join(not_active) if not_active else ''}")
    for n in nodes:
        n.stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
