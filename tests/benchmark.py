#!/usr/bin/env python3
"""Red's benchmark: where a run spends its time, on fresh sandbox hosts (not a test: it prints).

    .venv/bin/python tests/benchmark.py           # everything (sandboxes, several minutes)
    .venv/bin/python tests/benchmark.py fetcher   # the model fetcher against curl only
    .venv/bin/python tests/benchmark.py container # the image: size, builds, run, stop, restart
    .venv/bin/python tests/benchmark.py portal    # noVNC through the portal against direct; Caddy's latency
    .venv/bin/python tests/benchmark.py repairs   # one and twenty edited files repaired at 100 ms
    .venv/bin/python tests/benchmark.py models [SCALE]  # upstream's model table: red-models, aria2c, curl
    .venv/bin/python tests/benchmark.py fleet     # a no-op over 1, 8, 32 and 100 hosts at 100 ms
    .venv/bin/python tests/benchmark.py images [MB]  # each variant: size, cold build, build after a task change

Prints: a cold apply; with the snapshot off and on, side by side, the remote commands and seconds
of a no-op re-apply on loopback and at 100 ms round trip (SSH through tests/latency_proxy.py),
of an apply that repairs one edited file at 100 ms, and of a no-op over four hosts at once at
100 ms; then a no-op re-apply with @local on the target, the start phase (onstart.sh) until every
program is RUNNING, and supervisord's start to a connected noVNC session.
`container` builds the image with a real Docker engine (tests/engine.py), and the image of the
commit before the image work (BASELINE) on the same base, and times what a vast user waits for.
"""
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import PROJECT, SHUTDOWN_SUPERVISORD, SandboxFactory, converge  # noqa: E402
from desktop_view import CHROMIUM, CHROMIUM_ARGS, open_novnc  # noqa: E402
from latency_proxy import LatencyProxy  # noqa: E402

REPEAT = 5
ROUND_TRIP = 0.1  # seconds: a vast instance across the internet is 50 to 200 ms away
EDIT_ONE_FILE = "echo '# edited' >> /usr/sbin/policy-rc.d"  # a managed file nothing restarts for


def timed_apply(hosts, *args, round_trip=0.0):
    """Seconds of one `pyinfra -y inventory.py deploy.py ARGS` over all hosts, and the most remote
    commands it sent to one of them; through a latency proxy per host when round_trip is set."""
    with contextlib.ExitStack() as stack:
        infos = []
        for host in hosts:
            info = dict(host.info)
            if round_trip:
                info["port"] = stack.enter_context(LatencyProxy(host.info["port"], round_trip / 2)).port
            infos.append(info)
        env = {**os.environ, "RED_HOSTS": json.dumps(infos)}
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "tests/pyinfra_counted.py", "-y", "inventory.py", "deploy.py", *args],
                              cwd=PROJECT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    sent = json.loads(re.search(r"remote commands: (\{.*\})", done.stderr).group(1))
    return seconds, max(sent.values())


def median_apply(hosts, *args, round_trip=0.0, before=None, repeat=3):
    """Median seconds and the remote commands of `repeat` applies (`before` runs on each host first)."""
    runs = []
    for _ in range(repeat):
        for host in hosts:
            if before:
                host.ssh(before)
        runs.append(timed_apply(hosts, *args, round_trip=round_trip))
    return statistics.median(seconds for seconds, _ in runs), runs[-1][1]


def snapshot_table(hosts):
    """(what, {"false"|"true": (median seconds, remote commands)}): the snapshot off and on."""
    one, latency = hosts[:1], f"{ROUND_TRIP * 1000:.0f} ms round trip"
    rows = [
        ("no-op re-apply, loopback", one, {"repeat": REPEAT}),
        (f"no-op re-apply, {latency}", one, {"round_trip": ROUND_TRIP}),
        (f"one edited file repaired, {latency}", one, {"round_trip": ROUND_TRIP, "before": EDIT_ONE_FILE}),
        (f"no-op re-apply of {len(hosts)} hosts at once, {latency}", hosts, {"round_trip": ROUND_TRIP}),
    ]
    return [(what, {flag: median_apply(targets, "--data", f"snapshot={flag}", **how) for flag in ("false", "true")})
            for what, targets, how in rows]


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
                       "subprocess.run([\"/opt/red/onstart.sh\"], stdout=subprocess.DEVNULL, "
                       "stderr=subprocess.DEVNULL, check=True)\n"
                       "while True:\n"
                       "    out = subprocess.run([\"supervisorctl\", \"status\"], capture_output=True, text=True)\n"
                       "    lines = out.stdout.splitlines()\n"
                       "    if lines and all(\" RUNNING \" in line for line in lines): break\n"
                       "    time.sleep(0.05)\n"
                       "print(time.perf_counter() - t)'")


def supervisord_to_novnc(host, portal_token=None):
    """From supervisord's start to noVNC connected, desktop drawn (in chromium): the VNC password
    given, or through the portal with its cookie (`portal_token`)."""
    from playwright.sync_api import sync_playwright
    host.ssh(SHUTDOWN_SUPERVISORD)
    password = None if portal_token else host.path("/etc/red/vnc-password").read_text().strip()
    port = host.info["data"]["novnc_port"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context()
        if portal_token:
            context.add_cookies([{"name": "red_auth_token", "value": portal_token, "url": f"http://127.0.0.1:{port}"}])
        started = time.perf_counter()
        host.ssh("supervisord -c /etc/supervisor/supervisord.conf")
        while not open_novnc_quietly(context, port, password):
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        browser.close()
    return seconds


def open_novnc_quietly(browser, port, password):
    try:
        return open_novnc(browser, port, password, timeout=5).connected
    except Exception:  # noqa: BLE001 - not up yet: the page does not load
        return False


def fetcher_against_curl(size=1 << 30, repeat=3):
    """MB/s of the model fetcher and of curl, one large file from the same local server, in turns
    (files on /dev/shm, so the disk is not what is measured)."""
    import hashlib
    import tempfile
    from models_server import ModelServer
    content = os.urandom(1 << 20) * (size >> 20)
    rates = {"curl": [], "red-models": []}
    with ModelServer({"/big.bin": content}) as server, tempfile.TemporaryDirectory(dir="/dev/shm") as folder:
        manifest = Path(folder) / "manifest.json"
        manifest.write_text(json.dumps([{"name": "big", "path": "big.bin", "url": server.url("/big.bin"),
                                         "sha256": hashlib.sha256(content).hexdigest()}]))
        commands = {"curl": ["curl", "-s", "-o", f"{folder}/curl.bin", server.url("/big.bin")],
                    "red-models": [sys.executable, str(PROJECT / "files/models/red-models"), "--manifest",
                                   str(manifest), "--dir", f"{folder}/models"]}
        for _ in range(repeat):
            for name, command in commands.items():
                started = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True)
                rates[name].append(size / (time.perf_counter() - started) / 1e6)
                subprocess.run(["rm", "-rf", f"{folder}/curl.bin", f"{folder}/models"], check=True)
    return {name: statistics.median(values) for name, values in rates.items()}


def print_fetcher(rates):
    print(f"{'one 1 GiB model file on loopback (median of 3)':52} red-models {rates['red-models']:.0f} MB/s, "
          f"curl {rates['curl']:.0f} MB/s ({rates['red-models'] / rates['curl']:.0%} of curl)")


TWENTY = "tests/deploys/twenty_files.py"
EDIT_TWENTY_FILES = "; ".join(f"echo edited >> /etc/red-twenty/file-{number:02}" for number in range(20))


def repair_figures():
    """Seconds and remote commands of a no-op apply, one that repairs one file, then twenty, at ROUND_TRIP
    (snapshot on)."""
    factory = SandboxFactory("bench-repairs")
    try:
        host = factory.up("r")
        timed_apply([host], TWENTY)
        return {f"no-op re-apply, {ROUND_TRIP * 1000:.0f} ms round trip": median_apply(
                    [host], TWENTY, round_trip=ROUND_TRIP, repeat=REPEAT),
                f"one edited file repaired, {ROUND_TRIP * 1000:.0f} ms round trip": median_apply(
                    [host], TWENTY, round_trip=ROUND_TRIP, before=EDIT_ONE_FILE, repeat=REPEAT),
                f"twenty edited files repaired, {ROUND_TRIP * 1000:.0f} ms round trip": median_apply(
                    [host], TWENTY, round_trip=ROUND_TRIP, before=EDIT_TWENTY_FILES, repeat=REPEAT)}
    finally:
        factory.down_all()


def print_repairs(figures):
    for what, (seconds, sent) in figures.items():
        print(f"{what:52} {seconds:7.2f} s ({sent} remote commands)")


FLEET = (1, 8, 32, 100)
FLEET_ONE_WAY = 0.05  # seconds each way, through a proxy of its own for each host


def busy_seconds():
    """CPU seconds this machine has spent on anything (all cores), from /proc/stat."""
    fields = [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def fleet_apply(host, count, deploy="deploy.py", **environment):
    """(wall seconds, the controller's CPU seconds, the rest of this machine's CPU seconds: the
    target's side, its sshd and snapshot scripts, less this process's proxies) of a no-op over `count`
    names of one sandbox, each through its own latency proxy and with its own run lock there."""
    with contextlib.ExitStack() as stack:
        infos = [{**host.info, "name": f"{host.name}-{number:03}",
                  "port": stack.enter_context(LatencyProxy(host.info["port"], FLEET_ONE_WAY)).port}
                 for number in range(count)]
        env = {**os.environ, "RED_HOSTS": json.dumps(infos), "RED_LOCK_PER_HOST": "1", **environment}
        children, own, busy = os.times(), time.process_time(), busy_seconds()
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "tests/pyinfra_counted.py", "-y", "inventory.py", deploy],
                              cwd=PROJECT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        after, own, busy = os.times(), time.process_time() - own, busy_seconds() - busy
    if done.returncode or "Success" not in done.stderr:
        raise SystemExit(done.stderr[-3000:])
    changed = re.search(r"Grand total\s+(\d+)\s+(\S+)", done.stderr)
    if changed is None or changed.group(2) != "-":
        raise SystemExit(f"a no-op changed something: {changed and changed.group(0)}")
    controller = (after.children_user - children.children_user) + (after.children_system - children.children_system)
    return wall, controller, busy - controller - own


def fleet_figures():
    """{hosts: (median wall seconds, controller CPU, target side CPU, the floor's controller CPU)} of a
    no-op (median of 3), the floor being tests/deploys/floor.py with as many operations as Red's deploy."""
    factory = SandboxFactory("bench-fleet")
    try:
        # every login served at once (sshd refuses some beyond 10 starting ones by default)
        host = factory.up("f", sshd_options=["MaxStartups=1000"])
        timed_apply([host])
        operations = str(operations_declared(host))
        figures = {}
        for count in FLEET:
            runs = sorted((fleet_apply(host, count) for _ in range(3)), key=lambda run: run[0])
            floor = statistics.median(fleet_apply(host, count, "tests/deploys/floor.py",
                                                  RED_FLOOR_OPERATIONS=operations)[1] for _ in range(3))
            figures[count] = (*runs[1], floor)
        return figures
    finally:
        factory.down_all()


def operations_declared(host):
    """How many operations Red's deploy declares for the host (its results' grand total)."""
    return len(converge([host]).report["results"]["operations"])


def print_fleet(figures):
    print(f"{'a no-op over N hosts, 100 ms round trip':44} {'wall':>8} {'controller CPU':>15} {'target side CPU':>16}"
          f" {'floor CPU':>10}")
    for count, (wall, controller, target, floor) in figures.items():
        print(f"{count:>44} {wall:7.2f}s {controller:14.2f}s {target:15.2f}s {floor:9.2f}s")
    for what, column in (("controller CPU per further host", 1), ("the floor's", 3)):
        further = (figures[FLEET[-1]][column] - figures[FLEET[0]][column]) / (FLEET[-1] - FLEET[0])
        print(f"{what}: {further * 1000:.0f} ms")


CAP, REQUEST_DELAY = 25e6, 0.05  # bytes a second on one connection to a CDN, and its distance


def upstream_table(scale):
    """(path, size) of every file in VisoMaster's model table, its sizes times `scale`."""
    listed = json.loads((PROJECT / "tests" / "fixtures" / "visomaster_model_sizes.json").read_text())["files"]
    return [(entry["path"], int(entry["size"] * scale)) for entry in listed]


def zeros_sha256(size, block=bytes(4 << 20)):
    import hashlib
    digest = hashlib.sha256()
    for _ in range(size // len(block)):
        digest.update(block)
    digest.update(block[:size % len(block)])
    return digest.hexdigest()


def seconds_and_peak_rss(command):
    """Seconds and peak resident memory (MB: its VmHWM, read every 20 ms) of a command, which must
    succeed. (wait4's ru_maxrss would count the Python process it was forked from.)"""
    import tempfile
    peak = 0
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
        while process.poll() is None:
            with contextlib.suppress(OSError, StopIteration):
                status = Path(f"/proc/{process.pid}/status").read_text().splitlines()
                peak = max(peak, int(next(line for line in status if line.startswith("VmHWM:")).split()[1]))
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        if process.returncode:
            errors.seek(0)
            raise SystemExit(f"{command[0]} failed: {errors.read()[-2000:].decode(errors='replace')}")
    return seconds, peak / 1024


def models_figures(scale=1.0):
    """red-models, aria2c and curl side by side on upstream's table, zero-filled, from a local server
    that caps each connection at CAP and answers every request REQUEST_DELAY late."""
    import shutil
    import tempfile
    from models_server import ModelServer
    for tool, package in (("aria2c", "aria2"), ("curl", "curl")):
        if not shutil.which(tool):
            raise SystemExit(f"benchmark models: {tool} is missing (apt-get install {package})")
    files = upstream_table(scale)
    total = sum(size for _, size in files)
    served = {f"/assets/{path}": size for path, size in files}
    digests = {path: zeros_sha256(size) for path, size in files}
    with ModelServer(served, rate=CAP, request_delay=REQUEST_DELAY) as server, \
            tempfile.TemporaryDirectory(dir="/var/tmp") as folder:
        manifest, aria2_input = Path(folder) / "manifest.json", Path(folder) / "aria2.txt"
        manifest.write_text(json.dumps([{"name": path, "path": path, "url": server.url(f"/assets/{path}"),
                                         "sha256": digests[path]} for path, _ in files]))
        aria2_input.write_text("".join(
            f"{server.url(f'/assets/{path}')}\n  dir={folder}/aria2/{os.path.dirname(path)}\n"
            f"  out={os.path.basename(path)}\n  checksum=sha-256={digests[path]}\n" for path, _ in files))
        curl = ["curl", "-sf"]
        for path, _ in files:
            curl += ["--create-dirs", "-o", f"{folder}/curl/{path}", server.url(f"/assets/{path}")]
        tools = {
            "red-models, 16 connections, every file verified": (16, [
                sys.executable, str(PROJECT / "files/models/red-models"), "--manifest", str(manifest),
                "--dir", f"{folder}/red", "--connections", "16"]),
            "aria2c -x16 -s16 -j4, every file verified": (64, [
                "aria2c", "-x16", "-s16", "-j4", f"--input-file={aria2_input}", "--console-log-level=warn",
                "--summary-interval=0", "--allow-overwrite=true", "--auto-file-renaming=false"]),
            "curl, one file after another, not verified": (1, curl),
        }
        figures = {}
        for name, (connections, command) in tools.items():
            seconds, rss = seconds_and_peak_rss(command)
            figures[name] = (seconds, total / seconds / 1e6, rss, total / seconds / (connections * CAP))
            subprocess.run(f"rm -rf {folder}/red {folder}/aria2 {folder}/curl && sync", shell=True, check=True)
    return len(files), total, figures


def print_models(result):
    count, total, figures = result
    print(f"{count} files, {total / 1e9:.2f} GB; each connection capped at {CAP / 1e6:.0f} MB/s, "
          f"{REQUEST_DELAY * 1000:.0f} ms added to every request")
    for name, (seconds, rate, rss, of_cap) in figures.items():
        print(f"{name:52} {seconds:7.1f} s {rate:7.1f} MB/s  peak RSS {rss:6.1f} MB  {of_cap:4.0%} of its cap")


PORTAL_TOKEN = "benchmark-portal-token-0123"
LATENCY_REQUESTS = 1000


def request_seconds(port, headers, requests=LATENCY_REQUESTS):
    """Seconds of each GET / on 127.0.0.1:port, one connection per request as a browser's first."""
    import http.client
    seconds = []
    for _ in range(requests):
        started = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/", headers=headers)
        response = connection.getresponse()
        response.read()
        connection.close()
        assert response.status in (200, 302), response.status
        seconds.append(time.perf_counter() - started)
    return seconds


def portal_figures():
    """noVNC through the portal against direct on the same host in the same run, the latency
    Caddy's check and proxy add to a request (to noVNC's page on loopback), and red-doctor's time."""
    from test_portal import proxied_port
    factory = SandboxFactory("bench-portal")
    try:
        ports = {name: proxied_port() for name in ("portal_port", "novnc_port", "jupyter_port")}
        host = factory.up("p", env={"OPEN_BUTTON_TOKEN": PORTAL_TOKEN}, data={"access": "portal", **ports})
        converge([host])
        figures = {}
        through = [supervisord_to_novnc(host, PORTAL_TOKEN) for _ in range(REPEAT)]
        public, internal = ports["novnc_port"], ports["novnc_port"] + 10000
        proxied = request_seconds(public, {"Authorization": f"Bearer {PORTAL_TOKEN}"})
        direct = request_seconds(internal, {})
        for what, pick in (("median", statistics.median), ("p99", lambda values: statistics.quantiles(
                values, n=100)[98])):
            figures[f"a request through Caddy, added ({what})"] = (pick(proxied) - pick(direct)) * 1000
        figures["red-doctor on this healthy desk, every check (median)"] = statistics.median(
            json.loads(host.ssh("red-doctor --json", check=False).stdout)["seconds"] for _ in range(REPEAT))
        converge([host], "--data", "access=direct")
        figures["supervisord start to noVNC connected, direct"] = statistics.median(
            supervisord_to_novnc(host) for _ in range(REPEAT))
        figures["supervisord start to noVNC connected, portal"] = statistics.median(through)
    finally:
        factory.down_all()
    return figures


def print_portal(figures):
    for what, figure in figures.items():
        print(f"{what:52} {figure:7.2f} {'ms' if 'request' in what else 's'}")


BASELINE = "faaf91c"  # the last commit before the image was reworked (issue 12)


def container_figures():
    """{what: figure} of the image: size against BASELINE's, cold build, rebuild after a README edit,
    `docker run` to all RUNNING, `docker stop`, `docker restart` to all RUNNING (medians of REPEAT)."""
    import shutil
    import engine
    from visomaster_standin import StandIn
    client, started = engine.ensure_engine()
    prefix, folder = f"red-bench{os.getpid()}", Path(f"/var/tmp/red-sandbox/bench-{os.getpid()}-standin")
    server = engine.StandInServer(folder)
    StandIn(folder, wheels_url=server.wheels_url).make()
    server.start()
    data = {"python_version": "3.11", "visomaster_repo": server.repo_url, "visomaster_ref": "v0.1.0",
            "models_at": "never", "access": "direct"}
    def build_args(data):
        return {"BASE_IMAGE": engine.base_image(client),
                "RED_DATA": " ".join(f"--data {k}={v}" for k, v in data.items())}
    args = build_args(data)
    del data["access"]  # BASELINE has no portal (nor the setting): direct access was all it did
    baseline_args = build_args(data)
    figures, readme = {}, PROJECT / "README.md"
    try:
        image, figures["cold build"] = engine.build_image(client, f"{prefix}/red:new", args)
        original = readme.read_text()
        try:
            readme.write_text(original + "\nOne more line.\n")
            _, figures["rebuild after a one-line README edit"] = engine.build_image(client, f"{prefix}/red:new", args)
        finally:
            readme.write_text(original)
        subprocess.run(["git", "worktree", "add", "--detach", "-f", f"/tmp/{prefix}-baseline", BASELINE], cwd=PROJECT,
                       check=True, capture_output=True)
        try:
            baseline, _ = engine.build_image(client, f"{prefix}/red:baseline", baseline_args,
                                             path=f"/tmp/{prefix}-baseline")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", f"/tmp/{prefix}-baseline"], cwd=PROJECT, check=True)
        figures["image size"] = image.attrs["Size"] / 1e9
        figures["baseline image size"] = baseline.attrs["Size"] / 1e9
        runs, stops, restarts = [], [], []
        for turn in range(REPEAT):
            container = engine.run(client, image, f"{prefix}-run{turn}")
            runs.append(engine.wait_all_running(container, 120))
            started_stop = time.perf_counter()
            container.stop(timeout=10)
            stops.append(time.perf_counter() - started_stop)
            container.start()
            engine.wait_all_running(container, 120)
            started_restart = time.perf_counter()
            container.restart(timeout=10)
            restarts.append(time.perf_counter() - started_restart + engine.wait_all_running(container, 120))
            engine.remove(container)
        median = statistics.median
        figures.update({"docker run to all RUNNING": median(runs), "docker stop": median(stops),
                        "docker restart to all RUNNING": median(restarts)})
    finally:
        engine.remove_prefixed(client, prefix)
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
        engine.stop_engine(started)
    return figures


def print_container(figures):
    for what, figure in figures.items():
        unit = "GB" if "size" in what else "s"
        print(f"{what:52} {figure:7.2f} {unit}")


def images_figures(model_megabytes=256):
    """{variant: {what: figure}} for each variant in images.yaml: built alone from the local base with no
    cache (then removed: the legacy builder would pick among several cached chains), its size; then all
    built in one run sharing their layers, as the workflow's cache has them; then each built again
    after one task file changed, and the model requests the mirror served in that build. The models:
    `model_megabytes` MB in two files, served here."""
    import tempfile
    import engine
    import images
    from test_models import model_files
    client, started = engine.ensure_engine()
    prefix, figures = f"red-bench{os.getpid()}", {}
    files = model_files([model_megabytes << 20, 64 << 10])
    try:
        with engine.served_variants(client, prefix, files) as inputs, tempfile.TemporaryDirectory() as scratch:
            def build(variant, suffix="", **options):
                return engine.build_image(client, f"{prefix}/red:{variant['name']}{suffix}", inputs.build_args(variant),
                                          inputs.extra_hosts, **options)
            for variant in images.variants():
                image, seconds = build(variant, "-cold", nocache=True)
                figures[variant["name"]] = {"size": image.attrs["Size"] / 1e9, "cold build": seconds}
                client.images.remove(image.id, force=True)
            for variant in images.variants():
                figures[variant["name"]]["in one run"] = build(variant)[1]
            context = engine.context_with_a_changed_task(scratch)
            for variant in images.variants():
                asked = len(inputs.mirror.requests)
                figures[variant["name"]]["after a task change"] = build(variant, "-task", path=context)[1]
                figures[variant["name"]]["model requests"] = len(inputs.mirror.requests) - asked
    finally:
        engine.stop_engine(started)
    return figures


def print_images(figures):
    print(f"{'variant':14} {'size':>8} {'cold build':>11} {'in one run':>11} {'after a task change':>20} "
          f"{'model requests':>15}")
    for name, figure in figures.items():
        print(f"{name:14} {figure['size']:6.2f} GB {figure['cold build']:9.1f} s {figure['in one run']:9.1f} s "
              f"{figure['after a task change']:18.1f} s {figure['model requests']:15}")
    for what in ("in one run", "after a task change"):
        print(f"{'all variants, ' + what:52} {sum(figure[what] for figure in figures.values()):7.1f} s")


def main():
    if sys.argv[1:] == ["fetcher"]:
        print_fetcher(fetcher_against_curl())
        return
    if sys.argv[1:] == ["repairs"]:
        print_repairs(repair_figures())
        return
    if sys.argv[1:2] == ["models"]:
        print_models(models_figures(float(sys.argv[2]) if sys.argv[2:] else 1.0))
        return
    if sys.argv[1:] == ["container"]:
        print_container(container_figures())
        return
    if sys.argv[1:] == ["portal"]:
        print_portal(portal_figures())
        return
    if sys.argv[1:] == ["fleet"]:
        print_fleet(fleet_figures())
        return
    if sys.argv[1:2] == ["images"]:
        print_images(images_figures(int(sys.argv[2]) if sys.argv[2:] else 256))
        return
    factory = SandboxFactory("bench")
    try:
        hosts = [factory.up(name) for name in "abcd"]
        cold, cold_sent = timed_apply(hosts[:1])
        timed_apply(hosts[1:])  # the other three, for the run over four hosts
        table = snapshot_table(hosts)
        host = hosts[0]
        local = [timed_on_target(host, "cd /opt/red && venv/bin/pyinfra -y @local deploy.py --data phase=start")
                 for _ in range(REPEAT)]
        start = [float(host.ssh(START_UNTIL_RUNNING).stdout.split()[-1]) for _ in range(REPEAT)]
        novnc = [supervisord_to_novnc(host) for _ in range(REPEAT)]
    finally:
        factory.down_all()
    median = statistics.median
    print(f"{'cold apply over SSH':52} {cold:7.2f} s   ({cold_sent} remote commands)")
    print(f"{'':52} {'snapshot off':>22}   {'snapshot on':>22}")
    for what, by_flag in table:
        cells = [f"{by_flag[flag][0]:7.2f} s ({by_flag[flag][1]:3} commands)" for flag in ("false", "true")]
        print(f"{what:52} {cells[0]:>22}   {cells[1]:>22}")
    print(f"{'no-op re-apply with @local on the target':52} {median(local):7.2f} s")
    print(f"{'start phase until every program RUNNING':52} {median(start):7.2f} s")
    print(f"{'supervisord start to a connected noVNC session':52} {median(novnc):7.2f} s")
    print_fetcher(fetcher_against_curl())


if __name__ == "__main__":
    main()
