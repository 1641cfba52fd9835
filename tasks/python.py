"""The Python the app runs on (python_version), with its venv module and headers, installed by the
host's own means: the distribution's package where the release has that version, the deadsnakes
PPA on Ubuntu releases that lack it, and otherwise a clear error before anything changes."""
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt

from tasks import managed
from tasks.packages import interpreter

DEADSNAKES_PPA = "ppa:deadsnakes/ppa"


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
