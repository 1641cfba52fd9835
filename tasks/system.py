"""The base of every host: apt packages, the desktop user, the workspace and the logs directory."""
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt, files, server

# What every Red host needs, whatever else it runs.
BASE_PACKAGES = ["ca-certificates", "curl", "git", "procps", "python3", "python3-venv", "supervisor", "tzdata"]


@deploy("System")
def system():
    data = host.data
    files.put(
        name="Keep package installs from starting services (supervisor runs them)",
        src="files/system/policy-rc.d", dest="/usr/sbin/policy-rc.d", mode="755",
    )
    wanted = BASE_PACKAGES + list(data.extra_apt_packages)
    installed = host.get_fact(DebPackages)
    apt.packages(
        name="Install system packages",
        packages=wanted,
        no_recommends=True,
        # refresh the lists only when something is missing, and not more than once per cache time
        update=any(name not in installed for name in wanted),
        cache_time=data.apt_cache_time,
    )
    server.user(
        name=f"Desktop user {data.desktop_user}",
        user=data.desktop_user, home=f"/home/{data.desktop_user}", shell="/bin/bash", create_home=True,
    )
    # root and the desktop user both write in these two; the setgid bit keeps new files in the group
    files.directory(name="Workspace", path=data.workspace, user="root", group=data.desktop_user, mode="2775")
    files.directory(
        name="Logs directory", path=data.logs_dir, user="root", group=data.desktop_user, mode="2775",
    )
