"""No way in (issue 13), end to end on a sandbox host of its own over real SSH: the desktop user
tries each way to make root run its code; hostile settings are refused and change nothing; a
verbose run shows no digest of a secret; and every port the host listens on is probed from the
network, as a stranger would."""
import hashlib
import json
import shlex
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import websocket
from conftest import PROJECT, apply, converge

ESCALATED = "/root/escalated"  # only root can write here: whatever appears here ran as root
CHECKOUT = "/workspace/VisoMaster"
MANAGED_TREES = ("/etc", "/opt/red", "/usr/local/bin", "/usr/sbin")


@pytest.fixture(scope="module")
def target(sandbox_factory):
    host = sandbox_factory.up("sec")
    converge([host])
    host.ssh(f"mkdir -p {ESCALATED} && chmod 700 {ESCALATED}")
    return host


def as_red(host, command, check=True):
    return host.ssh(f"su red -s /bin/sh -c {shlex.quote(command)}", check=check)


def payload(name):
    """Shell that leaves a mark where root alone can write, or, run as anyone else, in /tmp."""
    return f"touch {ESCALATED}/{name} 2>/dev/null || echo ran > /tmp/as-red-{name}"


SETUP_PY = """from setuptools import setup
try:
    open("/root/escalated/pip", "w")
except OSError:
    open("/tmp/as-red-pip", "w").write("ran")
setup(name="red-evil", version="1.0", py_modules=[])
"""
FAKE_TQDM = """try:
    open("/root/escalated/import", "w")
except OSError:
    open("/tmp/as-red-import", "w").write("ran")
"""


def test_the_desktop_user_cannot_make_root_run_anything(target):
    host = target
    passwd = host.path("/etc/passwd").read_text()
    as_red(host, f"git -C {CHECKOUT} config core.fsmonitor {shlex.quote(payload('fsmonitor'))}")
    hook = f"{CHECKOUT}/.git/hooks/post-checkout"
    as_red(host, f"printf '#!/bin/sh\\n%s\\n' {shlex.quote(payload('hook'))} > {hook} && chmod +x {hook}")
    as_red(host, f"mkdir -p {CHECKOUT}/evil && printf %s {shlex.quote(SETUP_PY)} > {CHECKOUT}/evil/setup.py "
                 f"&& echo ./evil >> {CHECKOUT}/requirements_cu124.txt")
    as_red(host, f"printf %s {shlex.quote(FAKE_TQDM)} > {CHECKOUT}/tqdm.py")
    assert as_red(host, "ln -sf /etc/passwd /logs/x11vnc.log", check=False).returncode != 0, \
        "the desktop user may not replace a log root writes"
    apply([host])  # pip and the import check run (the requirements changed), git reads the checkout
    as_red(host, f"git -C {CHECKOUT} checkout --quiet --detach HEAD~1 && rm -f /tmp/as-red-hook")
    apply([host])  # git moves the checkout back: its hook runs
    host.ssh("/opt/red/onstart.sh > /tmp/onstart.log 2>&1")  # the start phase reads the checkout too
    assert host.ssh(f"ls -A {ESCALATED}").stdout == "", "something the desktop user wrote ran as root"
    assert host.path("/etc/passwd").read_text() == passwd
    ran_as_red = host.ssh("ls /tmp | grep '^as-red-' || true").stdout.split()
    assert {"as-red-hook", "as-red-pip", "as-red-import"} <= set(ran_as_red), \
        "each way in was tried: the user's own code ran, as the user"


def test_a_models_folder_linked_elsewhere_is_never_written_through(target):
    host = target
    as_red(host, "echo '[]' > /workspace/manifest.json && rm -rf /workspace/models "
                 f"&& ln -s {ESCALATED} /workspace/models")
    run = apply([host], "--data", "models_at=build", "--data", "models_manifest=/workspace/manifest.json")
    assert run.returncode != 0 and "Fetch and verify the model files" in run.stderr
    assert host.ssh(f"ls -A {ESCALATED}; stat -c %a {ESCALATED}").stdout.split() == ["700"]
    as_red(host, "rm /workspace/models /workspace/manifest.json")
    converge([host])


@pytest.mark.parametrize("name, value", [
    ("workspace", "/srv/$(touch /tmp/x)"), ("workspace", "/a;id"), ("workspace", "/"), ("logs_dir", "/etc"),
    ("visomaster_dir", "/usr"), ("models_dir", "/w/a b"), ("jupyter_dir", "/w/%(ENV_HOME)s"),
    ("red_dir", "/opt/`id`"), ("visomaster_venv", "/opt/v\nx"), ("desktop_user", "root"),
    ("desktop_user", "sshd"), ("visomaster_repo", "-oProxyCommand=id"), ("visomaster_repo", "ftp://x/y"),
    ("models_base_url", "file:///etc"), ("jupyter_token", "token\x1btoken"), ("visomaster_ref", "--upload-pack=id"),
])
def test_a_hostile_setting_is_refused_with_one_line_and_changes_nothing(target, name, value):
    before = target.digests(*MANAGED_TREES)
    run = apply([target], "--data", f"{name}={value}")
    lines = [line for line in run.stderr.splitlines() if line.startswith("red: ")]
    assert run.returncode != 0 and len(lines) == 1 and lines[0].startswith(f"red: setting {name} = "), run.stderr
    assert target.digests(*MANAGED_TREES) == before


def digests_of(secret):
    for text in (secret, secret + "\n"):
        for algorithm in ("md5", "sha1", "sha256", "sha512"):
            yield hashlib.new(algorithm, text.encode()).hexdigest()


def test_a_verbose_no_op_apply_shows_no_secret_and_no_digest_of_one(target):
    converge([target], "--data", "vnc_password=given-secret-42")
    env = {"RED_HOSTS": json.dumps([target.info]), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "pyinfra", "-y", "-vvv", "inventory.py", "deploy.py",
                           "--data", "vnc_password=given-secret-42"], cwd=PROJECT, env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert "Snapshot" in output and "@sha256" in output, "the fact output is in a -vvv run"
    for path in ("/etc/red/vnc-password", "/etc/red/jupyter-token"):
        secret = target.path(path).read_text().strip()
        assert secret not in output
        assert not [digest for digest in digests_of(secret) if digest in output], f"a digest of {path}"
    converge([target])


def network_address():
    """This machine's address on its network (not loopback): where a stranger's packets arrive."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet is sent
        return probe.getsockname()[0]


def listening(host):
    """{port: program name} of every TCP port a process of the host listens on."""
    inodes = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                inodes[fields[9]] = int(fields[1].rsplit(":", 1)[1], 16)
    found = {}
    for pid in host.sandbox.processes():
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                link = fd.readlink().name
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                found[inodes[link[8:-1]]] = Path(f"/proc/{pid}/comm").read_text().strip()
    return found


def vnc_security_types(receive, send):
    """The security types an RFB server offers (1 is None: no password)."""
    version = receive(12)
    assert version.startswith(b"RFB "), version
    send(b"RFB 003.008\n")
    count = receive(1)[0]
    return set(receive(count))


def rfb_over_tcp(address, port):
    with socket.create_connection((address, port), timeout=10) as sock:
        def receive(size):
            data = b""
            while len(data) < size:
                data += sock.recv(size - len(data))
            return data
        return vnc_security_types(receive, sock.sendall)


def rfb_over_websocket(address, port):
    ws = websocket.create_connection(f"ws://{address}:{port}/websockify", subprotocols=["binary"], timeout=10)
    buffer = bytearray()

    def receive(size):
        while len(buffer) < size:
            buffer.extend(ws.recv())
        data = bytes(buffer[:size])
        del buffer[:size]
        return data
    try:
        return vnc_security_types(receive, lambda data: ws.send_binary(data))
    finally:
        ws.close()


def stranger_gets_in(address, port, program):
    """Whether a stranger with no key, password or token gets anything but a refusal; None when the
    port does not answer at that address."""
    try:
        socket.create_connection((address, port), timeout=5).close()
    except OSError:
        return None
    if program == "sshd":
        done = subprocess.run(["ssh", "-p", str(port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                               "-o", "UserKnownHostsFile=/dev/null", "-o", "PubkeyAuthentication=no",
                               f"root@{address}", "true"], capture_output=True, text=True, timeout=30)
        return done.returncode == 0
    if program == "x11vnc":
        return 1 in rfb_over_tcp(address, port)
    if program == "websockify":
        return 1 in rfb_over_websocket(address, port)
    if program.startswith("jupyter"):
        try:
            return urllib.request.urlopen(f"http://{address}:{port}/api/contents", timeout=10).status == 200
        except urllib.error.HTTPError:
            return False
    raise AssertionError(f"an unknown program listens on {port}: {program}")


@pytest.mark.parametrize("settings", [(), ("--data", "jupyter_open=true", "--data", "vnc_passwordless=true")],
                         ids=["defaults", "open-and-passwordless"])
def test_no_port_lets_a_stranger_in_from_the_network(target, settings):
    converge([target], *settings)
    try:
        host_programs = {port: program for port, program in listening(target).items()
                         if port != target.info["port"]}  # the sandbox's own sshd, on 127.0.0.1
        assert {"sshd", "x11vnc", "websockify"} <= set(host_programs.values())
        address = network_address()
        answers = {port: stranger_gets_in(address, port, program) for port, program in host_programs.items()}
        assert not any(answers.values()), f"a stranger got in: {answers} ({host_programs})"
        if settings:  # what has no lock of its own is not on the network at all
            open_ports = {target.info["data"]["jupyter_port"], target.info["data"]["vnc_port"],
                          target.info["data"]["novnc_port"]}
            assert all(answers[port] is None for port in open_ports if port in answers), answers
    finally:
        converge([target])
