"""Fixtures for Red's tests: sandbox hosts over real SSH, and a pyinfra run that reports what changed."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import sandbox as sandboxes  # noqa: E402
from sandbox import free_port  # noqa: E402
from visomaster_standin import StandIn  # noqa: E402

PROJECT = sandboxes.PROJECT
ARTIFACTS = PROJECT / "tests" / "artifacts"


# stop supervisord and wait until its process is gone (as at a container stop)
SHUTDOWN_SUPERVISORD = ("supervisorctl shutdown >/dev/null; while [ -e /run/supervisord.pid ] && grep -qa "
                        "supervisord /proc/$(cat /run/supervisord.pid)/cmdline 2>/dev/null; do sleep 0.05; done")


def supervisord_log_size(host):
    return host.path("/logs/supervisord.log").stat().st_size


def stopped_since(host, size):
    """Programs supervisord stopped (as told to: not those that exited on their own) since its log had `size` bytes."""
    return set(re.findall(r"stopped: (\S+)", host.path("/logs/supervisord.log").read_text()[size:]))


@dataclass
class Host:
    """A sandbox host that is up: its SSH address, and its files seen from this machine."""
    sandbox: sandboxes.Sandbox
    info: dict

    @property
    def name(self):
        return self.info["name"]

    def path(self, inside):
        return self.sandbox.rootfs / inside.lstrip("/")

    def ssh_argv(self, command):
        return ["ssh", "-i", self.info["key"], "-p", str(self.info["port"]), "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                "root@127.0.0.1", command]

    def ssh(self, command, check=True, timeout=120):
        done = subprocess.run(self.ssh_argv(command), capture_output=True, text=True, timeout=timeout)
        if check and done.returncode:
            raise AssertionError(f"{command!r} on {self.name} exited {done.returncode}:\n{done.stdout}{done.stderr}")
        return done

    def digests(self, *folders):
        """path -> sha256 of every regular file under the folders (read from this machine)."""
        found = {}
        for folder in folders:
            for path in sorted(self.path(folder).rglob("*")):
                if path.is_file() and not path.is_symlink():
                    found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        return found


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def report(self):
        return json.loads(self.stdout)

    def changed(self, host):
        """Names of the operations that changed something on the host."""
        return [op["name"] for op in self.report["results"]["operations"] if host.name in op["success"]]

    def unchanged(self, host):
        return [op["name"] for op in self.report["results"]["operations"] if host.name in op["no_change"]]

    def sent(self, host):
        """Remote commands (and file transfers) the run sent to the host, as tests/pyinfra_counted.py counts them."""
        return json.loads(re.search(r"remote commands: (\{.*\})", self.stderr).group(1)).get(host.name, 0)


def apply(hosts, *args, env=None, deploys=("deploy.py",)):
    """`pyinfra -y --json inventory.py deploy.py ARGS` against the hosts, from the project, counting
    the remote commands it sends to each (Run.sent)."""
    environment = {**os.environ, "RED_HOSTS": json.dumps([host.info for host in hosts]), **(env or {})}
    done = subprocess.run([sys.executable, "tests/pyinfra_counted.py", "-y", "--json", "inventory.py", *deploys, *args],
                          cwd=PROJECT, env=environment, capture_output=True, text=True, timeout=1800)
    return Run(done.returncode, done.stdout, done.stderr)


def converge(hosts, *args, deploys=("deploy.py",)):
    run = apply(hosts, *args, deploys=deploys)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


class SandboxFactory:
    """Sandbox hosts, each with its own ports (they share this machine's network), all seeing one
    VisoMaster stand-in (tests/visomaster_standin.py) that their settings point at."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.made = []
        self.standin = StandIn(sandboxes.HOSTS / f"{prefix}-standin")
        shutil.rmtree(self.standin.folder, ignore_errors=True)
        self.standin.make()
        self.settings = sandboxes.standin_settings(self.standin)
        # a user's key given as a setting, and two the instance's environment gives (PUBLIC_KEY)
        self.keys = sandboxes.HOSTS / f"{prefix}-keys"
        shutil.rmtree(self.keys, ignore_errors=True)
        self.keys.mkdir(parents=True)
        self.user_key, self.env_key, self.env_key_2 = (self.keys / name
                                                       for name in ("user_key", "env_key", "env_key_2"))
        for key in (self.user_key, self.env_key, self.env_key_2):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key.name, "-f", str(key)], check=True)

    def public(self, key):
        return key.with_suffix(".pub").read_text().strip()

    def up(self, name, env=None, data=None, sshd_options=()):
        sandbox = sandboxes.Sandbox(f"{self.prefix}-{name}")
        sandbox.down()
        self.made.append(sandbox)
        data = {**self.settings, "vnc_port": free_port(), "novnc_port": free_port(), "sshd_port": free_port(),
                "jupyter_port": free_port(), "ssh_authorized_keys": [self.public(self.user_key)], **(data or {})}
        # vast's PUBLIC_KEY may hold several keys, one per line
        env = {"PUBLIC_KEY": f"{self.public(self.env_key)}\n{self.public(self.env_key_2)}", **(env or {})}
        host = Host(sandbox, sandbox.up(free_port(), env, data, [self.standin.folder], sshd_options))
        sandbox.trust_repository(self.standin.origin)
        return host

    def down_all(self):
        for sandbox in self.made:
            sandbox.down()
        shutil.rmtree(self.standin.folder, ignore_errors=True)
        shutil.rmtree(self.keys, ignore_errors=True)


def shellcheck_rendered(host, paths):
    """shellcheck's findings ("" when none) on shell scripts Red rendered from its templates on `host`."""
    done = subprocess.run([str(PROJECT / ".venv/bin/shellcheck"), *(str(host.path(path)) for path in paths)],
                          capture_output=True, text=True)
    return done.stdout + done.stderr


@pytest.fixture(scope="session")
def client():
    """The Docker engine (tests/engine.py), started when it is not running, stopped at the end if so."""
    if os.geteuid() != 0:
        pytest.skip("the Docker engine needs root")
    import engine
    client, started = engine.ensure_engine()
    yield client
    engine.stop_engine(started)


@pytest.fixture(scope="session")
def sandbox_factory():
    if os.geteuid() != 0:
        pytest.skip("sandbox hosts need root (debootstrap, chroot, mounts)")
    factory = SandboxFactory(f"t{os.getpid()}")
    yield factory
    factory.down_all()


@pytest.fixture(scope="session")
def provisioned(sandbox_factory):
    """One sandbox host, provisioned once for the session (WORKSPACE set as vast sets it)."""
    host = sandbox_factory.up("a", env={"WORKSPACE": "/data"})
    converge([host])
    return host


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium, driven by Playwright."""
    from desktop_view import CHROMIUM, CHROMIUM_ARGS
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
