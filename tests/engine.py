"""A real Docker engine for Red's tests: the engine itself (installed and started when missing), a
base image made from the sandbox's debootstrap rootfs (no registry has one for us), the VisoMaster
stand-in served where an image build can reach it, Red's image built from the Dockerfile, and
containers run from it with their ports on 127.0.0.1.

Whatever a test makes (containers, images, networks, volumes) it names with a prefix of its own;
remove_prefixed() takes all of it away again.
"""
import contextlib
import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import docker
import sandbox
from models_server import ModelServer
from visomaster_standin import StandIn

PROJECT = sandbox.PROJECT
ARTIFACTS = PROJECT / "tests" / "artifacts"
SOCKET = "unix:///var/run/docker.sock"
DOCKERD_LOG = sandbox.CACHE / "dockerd.log"
BASE_REPOSITORY = "red-test/bookworm"
PORTS = (22, 8080, 5901, 6901)  # sshd, Jupyter, VNC, noVNC: the image's defaults
SUPERVISOR_STATES = {"STOPPED", "STARTING", "RUNNING", "BACKOFF", "STOPPING", "EXITED", "FATAL", "UNKNOWN"}
COLOURS = re.compile(r"\x1b\[[0-9;]*m")  # the legacy builder colours a step's stderr
VARIANT_HOSTS = ("red-standin", "red-models")  # VisoMaster's stand-in and the models' mirror, as builds name them
CLIENT_TIMEOUT = 1800  # seconds one API call may wait for an answer (a build step can be silent for long)


# -- the engine ----------------------------------------------------------------------------------

def ensure_engine(timeout=60.0):
    """The Docker engine on /var/run/docker.sock: installed (docker.io) when dockerd is missing,
    started when nothing answers there. Returns (client, pid of the dockerd started here or None)."""
    install_engine()
    client = connect()
    if client:
        return client, None
    DOCKERD_LOG.parent.mkdir(parents=True, exist_ok=True)
    with DOCKERD_LOG.open("ab") as log:
        process = subprocess.Popen(["dockerd", "--storage-driver", "overlay2"], stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dockerd exited {process.returncode}:\n{tail(DOCKERD_LOG)}")
        client = connect()
        if client:
            return client, process.pid
        time.sleep(0.2)
    stop_engine(process.pid)
    raise RuntimeError(f"dockerd did not answer within {timeout:.0f}s:\n{tail(DOCKERD_LOG)}")


def install_engine():
    """Debian's docker.io, when there is no dockerd."""
    if not shutil.which("dockerd"):
        sandbox.apt_install("docker.io")


def compose_command():
    """Docker's compose plugin (`docker compose`) when there is one, else Debian's docker-compose (1.29,
    installed when missing: Debian 12 has no compose plugin)."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if not shutil.which("docker-compose"):
        sandbox.apt_install("docker-compose")
    return ["docker-compose"]



def connect():
    """A client of the engine on SOCKET, or None when nothing answers there."""
    try:
        return docker.DockerClient(base_url=SOCKET, version="auto", timeout=CLIENT_TIMEOUT)
    except docker.errors.DockerException:
        return None


def stop_engine(pid, timeout=30.0):
    """Ends the dockerd started by ensure_engine (its pid; None: nothing was started) and waits until it is gone."""
    if pid is None or not is_dockerd(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not has_ended(pid):
        time.sleep(0.1)
    if not has_ended(pid):
        raise RuntimeError(f"dockerd {pid} did not end within {timeout:.0f}s of SIGTERM")


def is_dockerd(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].endswith(b"dockerd")
    except OSError:
        return False


def has_ended(pid):
    """Whether the process is gone (reaped here when it is this process's child)."""
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return not Path(f"/proc/{pid}").exists()


def tail(path, lines=40):
    """The last lines of a text file."""
    with open(path, errors="replace") as text:
        return "".join(deque(text, maxlen=lines))


# -- the base image ------------------------------------------------------------------------------

def base_image(client):
    """The sandbox's debootstrap rootfs (Debian 12, trusting this machine's authorities) as an image,
    tagged red-test/bookworm:<its tarball's sha256, first 12>; imported once. Returns the tag."""
    sandbox.build_base()
    with open(sandbox.BASE_TARBALL, "rb") as tarball:
        digest = hashlib.file_digest(tarball, "sha256").hexdigest()[:12]
    tag = f"{BASE_REPOSITORY}:{digest}"
    if not client.images.list(name=tag):
        client.api.import_image(src=str(sandbox.BASE_TARBALL), repository=BASE_REPOSITORY, tag=digest)
    return tag


# -- the stand-in, served ------------------------------------------------------------------------

class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files and logs nothing."""

    def log_message(self, format, *args):
        pass


class StandInServer:
    """A VisoMaster stand-in folder (tests/visomaster_standin.py) served on 127.0.0.1, where an
    image build (--network host) reaches it: its origin.git by `git daemon` (repo_url; its log in
    tests/artifacts/git-daemon.log) and its wheels over HTTP (wheels_url). The ports are chosen at once,
    so the stand-in can be made with wheels_url before start():

        server = StandInServer(folder)
        standin = StandIn(folder, wheels_url=server.wheels_url).make()
        server.start()   # or: with server: ...
    """

    def __init__(self, folder):
        self.standin = StandIn(folder)
        self.git_port = sandbox.free_port()
        self.http = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(self.standin.wheels)))
        self.git = None
        self.thread = None

    @property
    def repo_url(self):
        return f"git://127.0.0.1:{self.git_port}/{self.standin.origin.name}"

    @property
    def wheels_url(self):
        return f"http://127.0.0.1:{self.http.server_address[1]}/"

    def start(self, timeout=10.0):
        """Starts both servers; returns when git daemon accepts connections."""
        folder = str(self.standin.folder)
        self.standin.folder.mkdir(parents=True, exist_ok=True)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        with (ARTIFACTS / "git-daemon.log").open("ab") as log:
            self.git = subprocess.Popen(
                ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={folder}", f"--port={self.git_port}",
                 "--listen=127.0.0.1", folder], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.git_answers():
            if self.git.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"git daemon did not listen on 127.0.0.1:{self.git_port}")
            time.sleep(0.05)
        return self

    def git_answers(self):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.git_port), timeout=1):
            return True
        return False

    def stop(self):
        """Ends git daemon (by its pid) and the HTTP server."""
        if self.git and self.git.poll() is None:
            self.git.terminate()
            self.git.wait(timeout=10)
        if self.thread:
            self.http.shutdown()
            self.thread.join()
        self.http.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


@contextlib.contextmanager
def served_standin(client, prefix, ready=None):
    """(StandInServer, StandIn): VisoMaster's stand-in made in a folder of its own and served; `ready(standin)`
    changes it first. At the end everything named with `prefix` leaves the engine, and the folder goes."""
    folder = sandbox.HOSTS / f"{prefix}-standin"
    shutil.rmtree(folder, ignore_errors=True)
    server = StandInServer(folder)
    standin = StandIn(folder, wheels_url=server.wheels_url).make()
    if ready:
        ready(standin)
    server.start()
    try:
        yield server, standin
    finally:
        remove_prefixed(client, prefix)
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class VariantInputs:
    """What every variant's build reads, served on this machine (see served_variants)."""
    build_args: Callable  # variant (an images.yaml entry) -> the build's arguments
    extra_hosts: dict  # the names a build resolves
    hosts: dict  # the names a container resolves
    mirror: ModelServer  # the model files' server; its .requests are what was asked


def bridge_gateway(client):
    """The address containers on Docker's default bridge reach this machine at. A daemon that made its
    bridge network at this start (a machine's first, with no network store yet) leaves the gateway out
    of the network's IPAM config (20.10 shows only the subnet): then the bridge interface's own address."""
    network = client.networks.get("bridge").attrs
    gateway = network["IPAM"]["Config"][0].get("Gateway")
    if gateway:
        return gateway
    interface = network["Options"]["com.docker.network.bridge.name"]
    shown = subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", interface], capture_output=True, text=True,
                           check=True).stdout
    return json.loads(shown)[0]["addr_info"][0]["local"]


@contextlib.contextmanager
def served_variants(client, prefix, files, ref="v0.2.0"):
    """VariantInputs for images.yaml's variants: VisoMaster's stand-in with a model table of `files` (name:
    content) at the tag `ref`, and a mirror of those files, served at the build (host network) and to
    containers (the bridge's gateway) under the names VARIANT_HOSTS."""
    from test_models import table, url_path
    gateway = bridge_gateway(client)
    standin_host, models_host = VARIANT_HOSTS
    with tempfile.TemporaryDirectory() as scratch:
        table_text = table(Path(scratch), files, "https://github.com").read_text()

    def with_a_model_table(standin):
        standin.commit("A model table", {"app/processors/models_data.py": table_text})
        standin.git("tag", ref)
        standin.git("push", "--quiet", "origin", "main", "--tags")
    with served_standin(client, prefix, ready=with_a_model_table) as (server, _), \
            ModelServer({url_path(name): content for name, content in files.items()}, address=gateway) as mirror:
        settings = {"python_version": "3.11", "visomaster_ref": ref,
                    "visomaster_repo": f"git://{standin_host}:{server.git_port}/origin.git",
                    "models_base_url": f"http://{models_host}:{mirror.port}"}

        def build_args(variant):
            return {"BASE_IMAGE": base_image(client), **variant["args"], "RED_DATA": sandbox.red_data(settings)}
        yield VariantInputs(build_args, {standin_host: "127.0.0.1", models_host: gateway},
                            {standin_host: gateway, models_host: gateway}, mirror)


@contextlib.contextmanager
def silent_listener(address, port):
    """A socket at address:port that takes TCP connections and never answers (a repository that hangs)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(64)
        yield sock


def connections_made(sock):
    """How many connections reached a silent listener (they wait, unanswered, in its backlog)."""
    sock.setblocking(False)
    count = 0
    with contextlib.suppress(BlockingIOError):
        while True:
            sock.accept()[0].close()
            count += 1
    return count


# -- Red's image ---------------------------------------------------------------------------------

def build_image(client, tag, build_args, extra_hosts=None, path=PROJECT, nocache=False, target=None):
    """Builds the Dockerfile in `path` (the project's) as `tag` (host network: the stand-in's servers are on 127.0.0.1),
    the build's log in tests/artifacts/build-<tag>.log; `nocache`: every step again; `target`: up to that stage.
    Returns (image, seconds);
    raises with the log's last 40 lines when the build fails."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / f"build-{tag.replace('/', '_').replace(':', '_')}.log"
    last = deque(maxlen=40)
    started = time.monotonic()
    with log_path.open("w") as log:
        for chunk in client.api.build(path=str(path), tag=tag, buildargs=build_args, network_mode="host",
                                      extra_hosts=extra_hosts, rm=True, forcerm=True, decode=True, nocache=nocache,
                                      target=target):
            text = COLOURS.sub("", chunk.get("stream") or chunk.get("status") or "")
            if "error" in chunk:
                text = f"ERROR: {chunk['error']}\n"
            log.write(text)
            log.flush()
            last.extend(text.splitlines())
            if "error" in chunk:
                raise RuntimeError(f"building {tag} failed (log: {log_path}):\n" + "\n".join(last))
    return client.images.get(tag), time.monotonic() - started


def context_with_a_changed_task(folder):
    """A copy of the project's build context in `folder` with one line added to a task file; returns the copy."""
    context = Path(folder) / "context"
    shutil.copytree(PROJECT, context, ignore=shutil.ignore_patterns(".venv", ".git", "tests", "__pycache__"))
    with (context / "tasks" / "desktop.py").open("a") as task:
        task.write("# a changed task\n")
    return context


# -- containers ----------------------------------------------------------------------------------

def run(client, image, name, ports=PORTS, env=None, volumes=None, network=None, command=None, extra_hosts=None):
    """Starts a container (detached) named `name`, each port published on 127.0.0.1 at a free
    host port (see host_port); `volumes` as the SDK takes them. Returns the container."""
    published = {} if network == "none" else {f"{port}/tcp": ("127.0.0.1", None) for port in ports}
    return client.containers.run(image, command, name=name, detach=True, environment=env, volumes=volumes,
                                 network=network, ports=published, extra_hosts=extra_hosts)


def host_port(container, port):
    """The port on 127.0.0.1 that the container's `port` is published at."""
    container.reload()
    return int(container.ports[f"{port}/tcp"][0]["HostPort"])


def programs(container):
    """{program: state} from `supervisorctl status` in the container ({} while supervisord is not up)."""
    output = container.exec_run(["supervisorctl", "status"]).output.decode(errors="replace")
    states = {}
    for line in output.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[1] in SUPERVISOR_STATES:
            states[fields[0]] = fields[1]
    return states


def wait_all_running(container, timeout, oneshots=()):
    """Waits until supervisord lists at least one program and every one is RUNNING (`oneshots`, programs
    that run once, RUNNING or EXITED); returns the seconds waited."""
    started = time.monotonic()
    states = {}
    while time.monotonic() - started < timeout:
        states = programs(container)
        if states and all(state == "RUNNING" or (name in oneshots and state == "EXITED")
                          for name, state in states.items()):
            return time.monotonic() - started
        time.sleep(0.1)
    raise TimeoutError(f"{container.name}: not every program RUNNING after {timeout:.0f}s: {states}")


def remove(container):
    """Removes the container, running or not, with its anonymous volumes."""
    with contextlib.suppress(docker.errors.NotFound):
        container.remove(force=True, v=True)


def remove_prefixed(client, prefix):
    """Removes every container, image tag, network and volume whose name starts with `prefix`."""
    for container in client.containers.list(all=True, filters={"name": prefix}):
        if container.name.startswith(prefix):
            remove(container)
    for image in client.images.list():
        for tag in image.tags:
            if tag.startswith(prefix):
                client.images.remove(tag)
    for network in client.networks.list(names=[prefix]):
        if network.name.startswith(prefix):
            network.remove()
    for volume in client.volumes.list(filters={"name": prefix}):
        if volume.name.startswith(prefix):
            volume.remove(force=True)
