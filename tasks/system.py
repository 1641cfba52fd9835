"""The base of every host: apt packages, the desktop user, the workspace and the logs directory."""
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt, files, server

from tasks.secrets import SECRETS_DIR

# What every Red host needs, whatever else it runs.
BASE_PACKAGES = ["ca-certificates", "curl", "git", "procps", "python3", "python3-venv", "supervisor", "tzdata"]


def install_packages(name, packages):
    """apt packages, without recommends; the lists are refreshed only when something is missing,
    and then at most once per apt_cache_time (no update, and no change, on a no-op apply)."""
    installed = host.get_fact(DebPackages)
    return apt.packages(
        name=name, packages=packages, no_recommends=True,
        update=any(package not in installed for package in packages),
        cache_time=host.data.apt_cache_time,
    )


@deploy("System")
def system():
    data = host.data
    files.put(
        name="Keep package installs from starting services (supervisor runs them)",
        src="files/system/policy-rc.d", dest="/usr/sbin/policy-rc.d", mode="755",
    )
    install_packages("Install system packages", BASE_PACKAGES + list(data.extra_apt_packages))
    files.directory(name=f"Red's settings and secrets ({SECRETS_DIR}, root only)", path=SECRETS_DIR,
                    user="root", group="root", mode="700")
    server.user(
        name=f"Desktop user {data.desktop_user}",
        user=data.desktop_user, home=f"/home/{data.desktop_user}", shell="/bin/bash", create_home=True,
    )
    # root and the desktop user both write in these two; the setgid bit keeps new files in the group
    files.directory(name="Workspace", path=data.workspace, user="root", group=data.desktop_user, mode="2775")
    files.directory(
        name="Logs directory", path=data.logs_dir, user="root", group=data.desktop_user, mode="2775",
    )
