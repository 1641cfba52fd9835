#!/usr/bin/env python3
"""Red's sandbox hosts: real Debian 12 targets on this machine, without any cloud account.

A host is a debootstrap rootfs, unpacked from a cached tarball, entered by chroot in its own PID
namespace (as a container has), with its own sshd on 127.0.0.1 and a key made for it.

    sandbox.py up NAME --port 2201 [--env WORKSPACE=/data]   start a host, print its JSON
    sandbox.py create NAME                                   unpack a fresh rootfs, start nothing
    sandbox.py run NAME -- CMD                               run CMD inside, as a Docker RUN step
    sandbox.py down NAME                                     end its processes, unmount, delete
    sandbox.py demo                                          up + provision + show (the quickstart)

Standard library only; run as root.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("RED_CACHE", Path.home() / ".cache" / "red-sandbox"))
HOSTS = Path(os.environ.get("RED_SANDBOX_HOSTS", "/var/tmp/red-sandbox"))
BASE_TARBALL = CACHE / "bookworm-base.tar"
APT_ARCHIVE = CACHE / "apt-archives"
PIP_CACHE = CACHE / "pip"
SUITE = "bookworm"
BASE_PACKAGES = "openssh-server,python3,ca-certificates"
HOST_TOOLS = {"debootstrap": "debootstrap", "unshare": "util-linux", "ssh": "openssh-client",
              "ssh-keygen": "openssh-client", "git": "git", "chromium": "chromium",
              "strace": "strace"}


# PID 1 of a sandbox host: start the command, then reap every child until the namespace ends.
INIT = """
import os, subprocess, sys
subprocess.Popen(sys.argv[1:])
while True:
    try:
        os.wait()
    except ChildProcessError:
        os.pause()
"""


def log(message):
    print(f"sandbox: {message}", file=sys.stderr, flush=True)


def sh(*argv, **kwargs):
    return subprocess.run([str(a) for a in argv], check=True, **kwargs)


def ensure_host_tools():
    missing = sorted({pkg for tool, pkg in HOST_TOOLS.items() if not shutil.which(tool)})
    if subprocess.run([sys.executable, "-c", "import ensurepip"], capture_output=True).returncode:
        missing.append("python3-venv")  # Debian's python3 makes no venv without it
    if missing:
        log(f"installing {' '.join(missing)}")
        apt_install(*missing)


def apt_install(*packages):
    """Debian packages (the package lists are fetched when the install lacks them)."""
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    if subprocess.run(install, check=False, stdout=subprocess.DEVNULL).returncode:
        sh("apt-get", "update", "-q")
        sh(*install)


def debian_mirror():
    """The mirror this machine's own apt uses (deb822 sources first, then sources.list)."""
    for path in [Path("/etc/apt/sources.list.d/debian.sources"), *Path("/etc/apt/sources.list.d").glob("*.sources")]:
        if path.exists():
            match = re.search(r"^URIs:\s*(\S+)", path.read_text(), re.M)
            if match and "security" not in match.group(1):
                return match.group(1)
    sources = Path("/etc/apt/sources.list")
    if sources.exists():
        match = re.search(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+\s+main", sources.read_text(), re.M)
        if match:
            return match.group(1)
    return "http://deb.debian.org/debian"


def trust_host_authorities(rootfs):
    """Trust what this machine trusts (a TLS-inspecting proxy sits between it and the registries)."""
    bundle = Path("/etc/ssl/certs/ca-certificates.crt").read_text()
    certs = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", bundle, re.S)
    target = rootfs / "usr/local/share/ca-certificates"
    target.mkdir(parents=True, exist_ok=True)
    for index, cert in enumerate(certs):
        (target / f"host-{index:03d}.crt").write_text(cert + "\n")
    sh("chroot", rootfs, "update-ca-certificates", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    (rootfs / "etc/pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")


def build_base():
    """debootstrap once; the tarball is the cache, rebuilt when missing."""
    if BASE_TARBALL.exists():
        return
    ensure_host_tools()
    CACHE.mkdir(parents=True, exist_ok=True)
    mirror = debian_mirror()
    log(f"debootstrap {SUITE} from {mirror} (once; cached at {BASE_TARBALL})")
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        rootfs = Path(scratch) / "rootfs"
        sh("debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", SUITE, rootfs, mirror,
           stdout=subprocess.DEVNULL)
        trust_host_authorities(rootfs)
        # like a Docker base image: no package lists, no cached .debs, no host keys
        for leftover in ["var/lib/apt/lists", "var/cache/apt/archives"]:
            for item in (rootfs / leftover).glob("*"):
                if item.is_file() and item.name != "lock":
                    item.unlink()
        for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
            key.unlink()
        partial = BASE_TARBALL.with_suffix(".partial")
        sh("tar", "-C", rootfs, "--numeric-owner", "-cf", partial, ".")
        partial.rename(BASE_TARBALL)


class Sandbox:
    def __init__(self, name):
        self.name = name
        self.dir = HOSTS / name
        self.rootfs = self.dir / "rootfs"
        self.key = self.dir / "id_ed25519"
        self.info_file = self.dir / "host.json"

    # -- life cycle --------------------------------------------------------------------------

    def create(self, shares=()):
        """A fresh rootfs with the shared caches mounted in, and each folder in `shares` at the same
        path inside (read-only); nothing running."""
        if self.rootfs.exists():
            raise SystemExit(f"sandbox: {self.name} exists already at {self.dir}; take it down first")
        build_base()
        self.rootfs.mkdir(parents=True)
        sh("tar", "-C", self.rootfs, "--numeric-owner", "-xf", BASE_TARBALL)
        self._mount_devices()
        self._share_caches()
        for folder in shares:
            inside = self.rootfs / str(folder).lstrip("/")
            inside.mkdir(parents=True, exist_ok=True)
            sh("mount", "--bind", folder, inside)
            sh("mount", "-o", "remount,bind,ro", inside)

    def up(self, port, env=None, data=None, shares=(), sshd_options=()):
        """The host, running its sshd on 127.0.0.1:port; `env` is the instance's environment, `data`
        the settings inventory.py gives this host, `sshd_options` more of sshd's -o options."""
        self.create(shares)
        self._authorize_key()
        sh("chroot", self.rootfs, "ssh-keygen", "-A", stdout=subprocess.DEVNULL)
        (self.rootfs / "run/sshd").mkdir(parents=True, exist_ok=True)
        sshd_log = open(self.dir / "sshd.log", "ab")
        # A small init is PID 1 of the host's own PID namespace, as in a container: it keeps the
        # "instance's" environment (vast sets WORKSPACE, VNC_PW... there) readable in
        # /proc/1/environ (sshd would overwrite its own with its process title), runs sshd and
        # reaps orphans.
        instance_env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        "LANG": "C.UTF-8", **(env or {})}
        process = subprocess.Popen(
            ["unshare", "--pid", "--fork", f"--mount-proc={self.rootfs}/proc", "chroot", str(self.rootfs),
             "/usr/bin/python3", "-c", INIT, "/usr/sbin/sshd", "-D", "-e", "-p", str(port),
             "-o", "ListenAddress=127.0.0.1", *(word for option in sshd_options for word in ("-o", option))],
            env=instance_env, stdout=sshd_log, stderr=sshd_log, stdin=subprocess.DEVNULL,
            start_new_session=True)
        wait_for_port(port, what=f"sshd of {self.name}", process=process)
        info = {"name": self.name, "address": "127.0.0.1", "port": port, "user": "root",
                "key": str(self.key), "rootfs": str(self.rootfs), "env": env or {}, "data": data or {}}
        self.info_file.write_text(json.dumps(info, indent=2))
        return info

    def down(self):
        if not self.dir.exists():
            return
        self._end_processes()
        self._harvest_apt_archive()
        for mountpoint in self._mounts():
            subprocess.run(["umount", "-l", mountpoint], check=False)
        if self.rootfs.exists():
            sh("rm", "-rf", "--one-file-system", self.rootfs)
        shutil.rmtree(self.dir)

    def run(self, command, env=None, **kwargs):
        """Run a shell command inside, the way a Docker RUN step does: a fresh PID namespace,
        the step's own environment only, everything it started ended when it returns."""
        step_env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "HOME": "/root", "LANG": "C.UTF-8", **(env or {})}
        return subprocess.run(
            ["unshare", "--pid", "--fork", f"--mount-proc={self.rootfs}/proc", "chroot", str(self.rootfs),
             "/bin/bash", "-c", command], env=step_env, check=False, **kwargs)

    def processes(self):
        """pids of every process whose root is this rootfs."""
        pids = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    if os.readlink(proc / "root") == str(self.rootfs):
                        pids.append(int(proc.name))
                except OSError:
                    pass
        return pids

    def trust_repository(self, path):
        """The desktop user clones the stand-in, a repository on this machine that root owns: git
        refuses that unless told (a real host clones over the network, and needs nothing of this)."""
        (self.rootfs / "etc/gitconfig").write_text(f"[safe]\n\tdirectory = {path}\n")

    # -- pieces ------------------------------------------------------------------------------

    def _mount_devices(self):
        dev = self.rootfs / "dev"
        sh("mount", "--bind", "/dev", dev)
        sh("mount", "--bind", "/dev/pts", dev / "pts")
        sh("mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs", dev / "shm")

    def _share_caches(self):
        """.debs are hard-linked in and harvested back at down (a shared bind mount would make
        parallel hosts fight over apt's archive lock); pip's cache is safe to share."""
        APT_ARCHIVE.mkdir(parents=True, exist_ok=True)
        archives = self.rootfs / "var/cache/apt/archives"
        for deb in APT_ARCHIVE.glob("*.deb"):
            target = archives / deb.name
            if not target.exists():
                os.link(deb, target)
        PIP_CACHE.mkdir(parents=True, exist_ok=True)
        pip_dir = self.rootfs / "root/.cache/pip"
        pip_dir.mkdir(parents=True, exist_ok=True)
        sh("mount", "--bind", PIP_CACHE, pip_dir)

    def _harvest_apt_archive(self):
        archives = self.rootfs / "var/cache/apt/archives"
        for deb in archives.glob("*.deb"):
            target = APT_ARCHIVE / deb.name
            if not target.exists():
                shutil.copy2(deb, target)

    def _authorize_key(self):
        if not self.key.exists():
            sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"red-sandbox-{self.name}", "-f", self.key)
        ssh_dir = self.rootfs / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        authorized = ssh_dir / "authorized_keys"
        authorized.write_text(self.key.with_suffix(".pub").read_text())
        authorized.chmod(0o600)

    def _end_processes(self):
        pids = self.processes()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.time() + 5
            while time.time() < deadline and self.processes():
                time.sleep(0.1)
            pids = self.processes()
            if not pids:
                return

    def _mounts(self):
        """Mount points inside the rootfs, deepest first."""
        points = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point == str(self.rootfs) or point.startswith(str(self.rootfs) + "/"):
                points.append(point)
        return sorted(points, key=len, reverse=True)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, what, process=None, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"sandbox: {what} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                if conn.recv(4).startswith(b"SSH"):
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"sandbox: {what} did not answer on 127.0.0.1:{port} within {timeout:.0f}s")


# -- quickstart ----------------------------------------------------------------------------------

def controller_python():
    """The controller's venv with requirements.txt installed (made when missing or stale)."""
    venv = PROJECT / ".venv"
    stamp = venv / ".requirements"
    wanted = (PROJECT / "requirements.txt").read_text() + (PROJECT / "requirements-test.txt").read_text()
    if not stamp.exists() or stamp.read_text() != wanted:
        log("installing the controller's packages into .venv")
        sh(sys.executable, "-m", "venv", venv)
        sh(venv / "bin/pip", "install", "-q", "-r", PROJECT / "requirements.txt",
           "-r", PROJECT / "requirements-test.txt")
        stamp.write_text(wanted)
    return venv / "bin/python"


def standin_settings(standin):
    """What a sandbox host (Debian 12) needs to run the deploy: Debian's Python, and VisoMaster's
    stand-in repository instead of the real one (out of reach here)."""
    # access=direct: each app on its own port, as the tests of each app reach it; tests/test_portal.py: the portal
    return {"python_version": "3.11", "visomaster_repo": standin.url, "visomaster_ref": "main",
            "models_at": "never", "access": "direct"}  # the stand-in has no model table until a test gives it one


def red_data(settings):
    """The settings as the Dockerfile's RED_DATA build argument."""
    return " ".join(f"--data {name}={value}" for name, value in settings.items())


def demo(port):
    from visomaster_standin import StandIn
    sandbox = Sandbox("demo")
    sandbox.down()
    standin = StandIn(sandbox.dir / "standin").make()
    # this machine's own services may hold 22 and 8080: the demo's sshd and Jupyter take the next ports
    data = {**standin_settings(standin), "sshd_port": port + 1, "jupyter_port": 8888}
    info = sandbox.up(port, data=data, shares=[standin.folder])
    sandbox.trust_repository(standin.origin)
    python = controller_python()
    env = {**os.environ, "RED_HOSTS": json.dumps([info])}
    sh(python, "-m", "pyinfra", "-y", "inventory.py", "deploy.py", cwd=PROJECT, env=env)
    ssh = ["ssh", "-i", info["key"], "-p", str(port), "-o", "StrictHostKeyChecking=no",
           "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "root@127.0.0.1"]
    # programs are STARTING for a second before supervisor calls them RUNNING
    sh(*ssh, "for _ in $(seq 50); do supervisorctl status | grep -qv ' RUNNING ' || break; sleep 0.2; done; "
             "supervisorctl status; echo; ls -ld /workspace /logs; ls /logs")
    print(f"\nThe sandbox host is up: {' '.join(ssh)}\n"
          f"Its desktop:  http://127.0.0.1:6901/  (password: {' '.join(ssh)} cat /etc/red/vnc-password)\n"
          f"JupyterLab:   http://127.0.0.1:8888/lab  (token: {' '.join(ssh)} cat /etc/red/jupyter-token)\n"
          f"Re-apply:     .venv/bin/pyinfra inventory.py deploy.py   (every sandbox host that is up)\n"
          f"Take down:    python3 tests/sandbox.py down demo")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up")
    up.add_argument("name")
    up.add_argument("--port", type=int, required=True)
    up.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    for name in ("create", "down"):
        commands.add_parser(name).add_argument("name")
    run = commands.add_parser("run")
    run.add_argument("name")
    run.add_argument("cmd", nargs=argparse.REMAINDER)
    commands.add_parser("prepare")
    commands.add_parser("demo").add_argument("--port", type=int, default=2222)
    args = parser.parse_args(argv)

    if os.geteuid() != 0:
        raise SystemExit("sandbox: run as root (debootstrap, chroot and mounts need it)")
    if args.command == "prepare":
        ensure_host_tools()
        build_base()
        controller_python()
    elif args.command == "demo":
        demo(args.port)
    elif args.command == "up":
        env = dict(item.split("=", 1) for item in args.env)
        print(json.dumps(Sandbox(args.name).up(args.port, env)))
    elif args.command == "create":
        Sandbox(args.name).create()
    elif args.command == "down":
        Sandbox(args.name).down()
    elif args.command == "run":
        command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        sys.exit(Sandbox(args.name).run(" ".join(command)).returncode)


if __name__ == "__main__":
    main()
