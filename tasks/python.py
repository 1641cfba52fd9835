"""The Python the app runs on (python_version), with its venv module and headers, installed by the
host's own means: the distribution's package where the release has that version, the deadsnakes
PPA on Ubuntu releases that lack it, and otherwise a clear error before anything changes."""
from dataclasses import dataclass

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt

from tasks import managed
from tasks.settings import SettingError

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
DEADSNAKES_PPA = "ppa:deadsnakes/ppa"


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


@deploy("Python")
def python():
    wanted = interpreter(host.data.os_release, host.data.python_version)
    managed.declare(packages=wanted.packages)
    if wanted.ppa:
        managed.checked(
            name=f"deadsnakes PPA (Python {wanted.version})", unchanged=f"{wanted.command} is installed",
            matches=lambda seen: all(seen["packages"].get(package) for package in wanted.packages),
            converge=lambda: add_deadsnakes(),
        )
    managed.packages(name=f"Python {wanted.version} with venv and headers", packages=wanted.packages)
    return wanted


def add_deadsnakes():
    yield from apt.packages._inner(packages=["software-properties-common", "gpg-agent"], no_recommends=True,
                                   update=True, cache_time=host.data.apt_cache_time)
    yield from apt.ppa._inner(src=DEADSNAKES_PPA)
