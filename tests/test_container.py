"""Red's image, built from the Dockerfile and run by a real Docker engine (tests/engine.py): the
container's main process, starts that survive stops, restarts, kills and a dead network, a start
whose app step fails, and a workspace mounted empty. The image is built once per session."""
import io
import json
import os
import random
import re
import shutil
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import engine
import pytest
import sandbox as sandboxes
from visomaster_standin import StandIn

STANDIN_HOST = "red-standin"  # the repository's host name: 127.0.0.1 at the build, whatever a test says at a run
PROGRAMS = {"sshd", "xvfb", "window-manager", "x11vnc", "novnc", "jupyter", "visomaster", "nudge"}
START_PHASE = ["/opt/red/venv/bin/pyinfra", "-y", "--json", "@local", "deploy.py", "--data", "phase=start"]


@dataclass
class Image:
    tag: str
    prefix: str  # of every container and file a test makes
    standin: StandIn
    tag_commit: str  # what visomaster_ref (v0.1.0) names
    git_port: int


@pytest.fixture(scope="session")
def image(client):
    """Red's image, built once: the base from the sandbox's rootfs, VisoMaster's stand-in served on
    127.0.0.1 (named STANDIN_HOST in the build), pinned to its tag v0.1.0."""
    prefix = f"red-t{os.getpid()}"
    with engine.served_standin(client, prefix) as (server, standin):
        settings = {"python_version": "3.11", "visomaster_repo": f"git://{STANDIN_HOST}:{server.git_port}/origin.git",
                    "visomaster_ref": "v0.1.0", "models_at": "never", "access": "direct"}
        tag = f"{prefix}/red:test"
        engine.build_image(client, tag, {"BASE_IMAGE": engine.base_image(client),
                                         "RED_DATA": sandboxes.red_data(settings)},
                           extra_hosts={STANDIN_HOST: "127.0.0.1"})
        yield Image(tag, prefix, standin, standin.git("rev-parse", "v0.1.0^{commit}").strip(), server.git_port)


def start(client, image, name, **kwargs):
    return engine.run(client, image.tag, f"{image.prefix}-{name}", **kwargs)


def read_file(container, path):
    """A file's text, also from a stopped container."""
    stream, _ = container.get_archive(path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        return tar.extractfile(tar.getmembers()[0]).read().decode()


def run_in(container, *command):
    code, output = container.exec_run(list(command), workdir="/opt/red")
    return code, output.decode(errors="replace")


def start_phase_changes(container):
    """Operations a start-phase apply, run now in the container, changes (none, once the desk is there)."""
    code, (stdout, stderr) = container.exec_run(START_PHASE, workdir="/opt/red", demux=True)
    assert code == 0, (stderr or b"").decode()[-3000:]
    report = json.loads(stdout)
    return [op["name"] for op in report["results"]["operations"] if op["success"]]


def host_key(container):
    return run_in(container, "cat", "/etc/ssh/ssh_host_ed25519_key.pub")[1].split()[1]


def test_the_main_process_is_supervisord_and_docker_stop_stops_every_program_cleanly(client, image):
    container = start(client, image, "stop")
    engine.wait_all_running(container, 90)
    assert PROGRAMS <= set(engine.programs(container))
    assert run_in(container, "cat", "/proc/1/cmdline")[1].split("\0")[:3] == [
        "/usr/bin/python3", "/usr/bin/supervisord", "-n"], "supervisord is the container's main process"
    container.stop(timeout=10)
    container.reload()
    assert container.attrs["State"]["ExitCode"] == 0
    log = read_file(container, "/logs/supervisord.log")
    assert PROGRAMS <= set(re.findall(r"stopped: (\S+) \(", log)), log[-2000:]
    assert "SIGKILL" not in log


def test_a_stopped_container_starts_and_twenty_restarts_in_a_row_each_bring_every_program_up(client, image):
    container = start(client, image, "restarts")
    engine.wait_all_running(container, 90)
    container.stop(timeout=10)
    container.start()
    engine.wait_all_running(container, 60)
    for turn in range(20):
        container.restart(timeout=10)
        engine.wait_all_running(container, 60)
        assert PROGRAMS <= set(engine.programs(container)), f"restart {turn + 1}"


def test_a_container_killed_at_any_moment_of_its_start_comes_back_unchanged(client, image):
    container = start(client, image, "kills")
    engine.wait_all_running(container, 90)
    assert run_in(container, "sh", "-c", "echo mine > /workspace/mine.txt")[0] == 0
    moments = sorted(random.uniform(0.1, 5.0) for _ in range(10))
    for moment in moments:
        container.restart(timeout=10)
        time.sleep(moment)
        container.kill()
        container.start()
        engine.wait_all_running(container, 90)
        assert start_phase_changes(container) == [], f"killed {moment:.2f} s into the start"
        assert run_in(container, "cat", "/workspace/mine.txt")[1] == "mine\n"


def test_a_start_without_network_or_with_a_repository_that_never_answers_asks_it_nothing(client, image):
    offline = start(client, image, "offline", network="none")
    engine.wait_all_running(offline, 60)
    assert "cannot ask" not in offline.logs().decode()
    gateway = engine.bridge_gateway(client)
    with engine.silent_listener(gateway, image.git_port) as silent:
        hanging = start(client, image, "hanging", extra_hosts={STANDIN_HOST: gateway})
        assert run_in(hanging, "getent", "hosts", STANDIN_HOST)[1].split()[0] == gateway
        engine.wait_all_running(hanging, 60)
        assert engine.connections_made(silent) == 0, "the start asked the repository for a pinned tag"


def first_answer(url, timeout):
    """The first HTTP answer of `url` (a program is RUNNING a second after its start, before it listens)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return urllib.request.urlopen(url, timeout=10)
        except (ConnectionError, urllib.error.URLError) as error:
            if isinstance(error, urllib.error.HTTPError) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_a_start_whose_app_step_fails_still_opens_the_desk_with_the_instance_keys(client, image, tmp_path):
    workspace = sandboxes.HOSTS / f"{image.prefix}-failing-workspace"
    shutil.rmtree(workspace, ignore_errors=True)
    checkout = workspace / "VisoMaster"
    subprocess.run(["git", "clone", "--quiet", str(image.standin.origin), str(checkout)], check=True)
    subprocess.run(["git", "-C", str(checkout), "checkout", "--quiet", "--detach", "v0.1.0"], check=True)
    subprocess.run(["git", "-C", str(checkout), "remote", "set-url", "origin",
                    f"git://{STANDIN_HOST}:{image.git_port}/origin.git"], check=True)
    (checkout / "requirements_cu124.txt").write_text("surely-not-a-package-red==9.9\n")
    subprocess.run(["chown", "-R", "1000:1000", str(checkout)], check=True)  # the image's desktop user owns it
    keys = []
    for name in ("one", "two"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name)], check=True)
        keys.append(tmp_path / name)
    token = "red-container-token-0123456789"
    container = start(client, image, "failing", volumes={str(workspace): {"bind": "/workspace", "mode": "rw"}},
                      env={"PUBLIC_KEY": "\n".join(key.with_suffix(".pub").read_text().strip() for key in keys),
                           "JUPYTER_TOKEN": token})
    try:
        engine.wait_all_running(container, 180)
        logs = container.logs().decode()
        (engine.ARTIFACTS / "failing-start.log").write_text(logs)
        assert "red: pip could not install surely-not-a-package-red==9.9" in logs
        assert "step(s) failed; everything else was applied" in logs and "onstart.sh: the start phase failed" in logs
        ssh_port = engine.host_port(container, 22)
        for key in keys:
            done = subprocess.run(["ssh", "-i", str(key), "-p", str(ssh_port), "-o", "BatchMode=yes",
                                   "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                                   "root@127.0.0.1", "echo in"], capture_output=True, text=True, timeout=30)
            assert done.stdout.strip() == "in", done.stderr
        scanned = subprocess.run(["ssh-keyscan", "-t", "ed25519", "-p", str(ssh_port), "127.0.0.1"],
                                 capture_output=True, text=True, timeout=30).stdout.split()
        image_key = client.containers.run(image.tag, ["cat", "/etc/ssh/ssh_host_ed25519_key.pub"],
                                          remove=True).decode().split()[1]
        assert scanned[-1] == host_key(container) != image_key, "sshd answers with the instance's own host key"
        contents = f"http://127.0.0.1:{engine.host_port(container, 8080)}/api/contents"
        assert first_answer(f"{contents}?token={token}", 60).status == 200, "Jupyter starts, and its token works"
        with pytest.raises(urllib.error.HTTPError, match="403"):
            urllib.request.urlopen(contents, timeout=10)
    finally:
        engine.remove(container)
        shutil.rmtree(workspace, ignore_errors=True)


def test_an_empty_folder_mounted_on_the_workspace_is_seeded_from_the_image_without_the_network(client, image):
    workspace = sandboxes.HOSTS / f"{image.prefix}-empty-workspace"
    shutil.rmtree(workspace, ignore_errors=True)
    workspace.mkdir(parents=True)
    container = start(client, image, "seeded", network="none",
                      volumes={str(workspace): {"bind": "/workspace", "mode": "rw"}})
    try:
        engine.wait_all_running(container, 90)
        assert (workspace / "VisoMaster" / "main.py").exists()
        assert run_in(container, "runuser", "-u", "red", "--", "git", "-C", "/workspace/VisoMaster", "rev-parse",
                      "HEAD")[1].strip() == \
            image.tag_commit
        assert os.readlink(workspace / "VisoMaster" / "model_assets") == "/workspace/models"
        assert start_phase_changes(container) == []
    finally:
        engine.remove(container)
        shutil.rmtree(workspace, ignore_errors=True)


def test_two_containers_have_their_own_host_keys_and_no_layer_holds_a_secret(client, image):
    secrets = {"VNC_PW": "vnc-secret-9f3a", "JUPYTER_TOKEN": "jupyter-secret-7c21e0d4"}
    first, second = (start(client, image, name, env=secrets) for name in ("keys-a", "keys-b"))
    for container in (first, second):
        engine.wait_all_running(container, 90)
    assert host_key(first) != host_key(second)
    for container in (first, second):  # the secrets are on the instance, where the services read them
        assert run_in(container, "cat", "/etc/red/jupyter-token")[1].strip() == secrets["JUPYTER_TOKEN"]
    found = []
    with tarfile.open(fileobj=io.BytesIO(b"".join(client.images.get(image.tag).save())), mode="r:") as saved:
        for member in saved.getmembers():
            if member.name.endswith("layer.tar"):
                with tarfile.open(fileobj=saved.extractfile(member)) as layer:
                    found += [f"{member.name}:{item.name}" for item in layer.getmembers()
                              if item.name.startswith(("etc/red/vnc-password", "etc/red/jupyter-token"))
                              or (item.isfile() and any(secret.encode() in layer.extractfile(item).read()
                                                        for secret in secrets.values()))]
    assert found == [], "secrets in the image's layers"
