#!/usr/bin/env python3
"""Red's benchmark: where a run spends its time, on a fresh sandbox host (not a test: it prints).

    .venv/bin/python tests/benchmark.py

Prints: a cold apply, a no-op re-apply over SSH (and the remote commands it sends), a no-op
re-apply with @local on the target, and the start phase (onstart.sh) until every program is
RUNNING.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import PROJECT, SHUTDOWN_SUPERVISORD, SandboxFactory  # noqa: E402
from desktop_view import CHROMIUM, CHROMIUM_ARGS, open_novnc  # noqa: E402

REPEAT = 5


def timed_apply(host):
    env = {**os.environ, "RED_HOSTS": json.dumps([host.info])}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "tests/pyinfra_counted.py", "-y", "inventory.py", "deploy.py"],
                          cwd=PROJECT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    sent = json.loads(re.search(r"remote commands: (\{.*\})", done.stderr).group(1))
    return seconds, sent[host.name]


def timed_on_target(host, command):
    """Seconds a shell command takes on the target, measured there (no SSH in the figure)."""
    probe = ("python3 -c 'import subprocess, sys, time; t = time.perf_counter(); "
             "r = subprocess.run(sys.argv[1], shell=True, capture_output=True); "
             "print(r.returncode, time.perf_counter() - t)' " + json.dumps(command))
    code, seconds = host.ssh(probe, timeout=600).stdout.split()
    if code != "0":
        raise SystemExit(f"{command} failed on {host.name}")
    return float(seconds)


START_UNTIL_RUNNING = (SHUTDOWN_SUPERVISORD + "; "
                       "python3 -c 'import subprocess, time; t = time.perf_counter(); "
                       "subprocess.run([\"/opt/red/onstart.sh\"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)\n"
                       "while True:\n"
                       "    out = subprocess.run([\"supervisorctl\", \"status\"], capture_output=True, text=True)\n"
                       "    lines = out.stdout.splitlines()\n"
                       "    if lines and all(\" RUNNING \" in line for line in lines): break\n"
                       "    time.sleep(0.05)\n"
                       "print(time.perf_counter() - t)'")


def supervisord_to_novnc(host):
    """From supervisord's start to noVNC connected, password given, desktop drawn (in chromium)."""
    from playwright.sync_api import sync_playwright
    host.ssh(SHUTDOWN_SUPERVISORD)
    password = host.path("/etc/red/vnc-password").read_text().strip()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        started = time.perf_counter()
        host.ssh("supervisord -c /etc/supervisor/supervisord.conf")
        while not open_novnc_quietly(browser, host.info["data"]["novnc_port"], password):
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        browser.close()
    return seconds


def open_novnc_quietly(browser, port, password):
    try:
        return open_novnc(browser, port, password, timeout=5).connected
    except Exception:  # noqa: BLE001 - not up yet: the page does not load
        return False


def main():
    factory = SandboxFactory("bench")
    try:
        host = factory.up("a")
        cold, cold_sent = timed_apply(host)
        noop = [timed_apply(host) for _ in range(REPEAT)]
        local = [timed_on_target(host, "cd /opt/red && venv/bin/pyinfra -y @local deploy.py --data phase=start")
                 for _ in range(REPEAT)]
        start = [float(host.ssh(START_UNTIL_RUNNING).stdout.split()[-1]) for _ in range(REPEAT)]
        novnc = [supervisord_to_novnc(host) for _ in range(REPEAT)]
    finally:
        factory.down_all()
    median = statistics.median
    print(f"{'cold apply over SSH':48} {cold:7.2f} s   ({cold_sent} remote commands)")
    print(f"{'no-op re-apply over SSH (median of %d)' % REPEAT:48} {median(s for s, _ in noop):7.2f} s   "
          f"({noop[-1][1]} remote commands)")
    print(f"{'no-op re-apply with @local on the target':48} {median(local):7.2f} s")
    print(f"{'start phase until every program RUNNING':48} {median(start):7.2f} s")
    print(f"{'supervisord start to a connected noVNC session':48} {median(novnc):7.2f} s")


if __name__ == "__main__":
    main()
