"""SSH and JupyterLab (issue 6), end to end on a sandbox host: key-only SSH on sshd_port with host
keys that stay, JupyterLab behind its token with a kernel in the app's environment, both under
supervisor."""
import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest
from conftest import SHUTDOWN_SUPERVISORD, converge, stopped_since, supervisord_log_size
from test_desktop import wait_running
from test_foundation import CONVERGE_PROGRAMS

TOKEN_FILE = "/etc/red/jupyter-token"


def sshd_port(host):
    return host.info["data"]["sshd_port"]


def jupyter_url(host, path):
    return f"http://127.0.0.1:{host.info['data']['jupyter_port']}{path}"


def red_ssh(host, key, *options, command="echo in"):
    """ssh to Red's own sshd (not the sandbox's) as root with `key`."""
    return subprocess.run(
        ["ssh", "-i", str(key), "-p", str(sshd_port(host)), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
         *options, "root@127.0.0.1", command], capture_output=True, text=True, timeout=30)


def host_key(host):
    done = subprocess.run(["ssh-keyscan", "-t", "ed25519", "-p", str(sshd_port(host)), "127.0.0.1"],
                          capture_output=True, text=True, timeout=30)
    return done.stdout.split()[-1]


def new_key(tmp_path, name):
    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True)
    return path


def status(url, headers=None):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def token(host):
    return host.path(TOKEN_FILE).read_text().strip()


def wait_jupyter(host, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if status(jupyter_url(host, "/api/status"), {"Authorization": f"token {token(host)}"}) == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(host.ssh("tail -20 /logs/jupyter.log", check=False).stdout)


def test_ssh_takes_the_given_keys_and_nothing_else(provisioned, sandbox_factory, tmp_path):
    wait_running(provisioned, {"sshd"})
    assert red_ssh(provisioned, sandbox_factory.user_key).stdout == "in\n", "the key from ssh_authorized_keys"
    for key in (sandbox_factory.env_key, sandbox_factory.env_key_2):
        assert red_ssh(provisioned, key).stdout == "in\n", "each key of PUBLIC_KEY's lines"
    stranger = red_ssh(provisioned, new_key(tmp_path, "stranger"))
    assert stranger.returncode == 255 and "Permission denied (publickey)" in stranger.stderr
    password = red_ssh(provisioned, new_key(tmp_path, "any"), "-o", "PubkeyAuthentication=no",
                       "-o", "PreferredAuthentications=password,keyboard-interactive")
    assert password.returncode == 255 and "Permission denied (publickey)." in password.stderr, \
        "the server offers no password login at all"


def test_host_keys_stay_through_an_apply_and_a_start(provisioned):
    before = host_key(provisioned)
    assert converge([provisioned]).changed(provisioned) == []
    assert host_key(provisioned) == before
    provisioned.ssh(SHUTDOWN_SUPERVISORD)
    provisioned.ssh("/opt/red/onstart.sh")
    wait_running(provisioned, {"sshd"})
    assert host_key(provisioned) == before


def test_a_key_added_by_hand_survives_an_apply(provisioned, tmp_path):
    mine = new_key(tmp_path, "by-hand")
    provisioned.ssh(f"echo '{mine.with_suffix('.pub').read_text().strip()}' >> /root/.ssh/authorized_keys")
    assert converge([provisioned]).changed(provisioned) == []
    assert red_ssh(provisioned, mine).stdout == "in\n"


def test_jupyter_wants_its_token(provisioned):
    wait_jupyter(provisioned)
    assert len(token(provisioned)) == 32
    assert status(jupyter_url(provisioned, "/api/contents")) == 403
    assert status(jupyter_url(provisioned, "/api/contents"), {"Authorization": "token wrong-token"}) == 403
    assert status(jupyter_url(provisioned, "/api/contents"), {"Authorization": f"token {token(provisioned)}"}) == 200
    assert token(provisioned) not in provisioned.ssh("ps -eo args").stdout


def run_in_kernel(host, kernel_name, code, base=None, authorization=None):
    """Starts a kernel through Jupyter's REST API and runs `code` over its websocket; returns stdout.
    `base`: Jupyter's address (default: its own port), `authorization`: the header's value (default: its token)."""
    import websocket
    base = base or jupyter_url(host, "")
    authorization = authorization or f"token {token(host)}"
    headers = {"Authorization": authorization, "Content-Type": "application/json"}
    request = urllib.request.Request(f"{base}/api/kernels", method="POST", headers=headers,
                                     data=json.dumps({"name": kernel_name}).encode())
    with urllib.request.urlopen(request, timeout=30) as response:
        kernel = json.load(response)["id"]
    try:
        channel = websocket.create_connection(
            f"{base}/api/kernels/{kernel}/channels".replace("http", "ws", 1),
            header=[f"Authorization: {authorization}"], timeout=60)
        message_id = uuid.uuid4().hex
        channel.send(json.dumps({
            "header": {"msg_id": message_id, "msg_type": "execute_request", "username": "test", "session": "t",
                       "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        output = []
        while True:
            message = json.loads(channel.recv())
            if message.get("parent_header", {}).get("msg_id") != message_id:
                continue
            if message["msg_type"] == "stream":
                output.append(message["content"]["text"])
            elif message["msg_type"] == "error":
                raise AssertionError(message["content"]["evalue"])
            elif message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                return "".join(output)
    finally:
        urllib.request.urlopen(urllib.request.Request(f"{base}/api/kernels/{kernel}", method="DELETE",
                                                      headers=headers), timeout=30)


def test_a_notebook_in_the_app_kernel_imports_what_only_the_app_has(provisioned):
    wait_jupyter(provisioned)
    assert provisioned.ssh("/opt/jupyter/venv/bin/python -c 'import PySide6'", check=False).returncode != 0
    printed = run_in_kernel(provisioned, "visomaster", "import sys, PySide6; print(PySide6.__version__, sys.prefix)")
    version, prefix = printed.split()
    assert version == "6.7.2" and prefix.startswith("/opt/visomaster/venv")


@pytest.mark.parametrize("program", ["sshd", "jupyter"])
def test_killed_it_is_back_under_supervisor(provisioned, program):
    pid = wait_running(provisioned, {program})[program]
    provisioned.ssh(f"kill -9 {pid}")
    wait_running(provisioned, {program}, exclude_pids=[pid])


def test_a_changed_token_restarts_jupyter_alone(provisioned):
    log_size = supervisord_log_size(provisioned)
    run = converge([provisioned], "--data", "jupyter_token=a-given-token-123")
    assert "a-given-token-123" not in run.stdout + run.stderr
    assert run.changed(provisioned) == ["JupyterLab: token and configuration | Token (given)", CONVERGE_PROGRAMS]
    wait_jupyter(provisioned)
    assert token(provisioned) == "a-given-token-123"
    assert stopped_since(provisioned, log_size) == {"jupyter"}, "Red restarted Jupyter and nothing else"
