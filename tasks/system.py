"""The base of every host: apt packages, the desktop user, the workspace and the logs directory."""
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import FindFiles

from tasks import managed
from tasks.packages import BASE
from tasks.secrets import SECRETS_DIR

DPKG_UPDATES, DPKG_JOURNAL = "/var/lib/dpkg/updates", "[0-9]*"  # dpkg's journal of an unfinished run


@deploy("System")
def system():
    data = host.data
    managed.put(
        name="Keep package installs from starting services (supervisor runs them)",
        src="files/system/policy-rc.d", dest="/usr/sbin/policy-rc.d", mode="755",
    )
    interrupted_dpkg()
    managed.packages(name="Install system packages", packages=BASE + list(data.extra_apt_packages))
    managed.directory(name=f"Red's settings and secrets ({SECRETS_DIR}, root only)", path=SECRETS_DIR,
                      user="root", group="root", mode="700")
    managed.user(name=f"Desktop user {data.desktop_user}", user=data.desktop_user, home=f"/home/{data.desktop_user}",
                 shell="/bin/bash")
    # root and the desktop user both write in the workspace; the setgid bit keeps new files in the group
    managed.directory(name="Workspace", path=data.workspace, user="root", group=data.desktop_user, mode="2775")
    # root's alone: supervisord (root) writes every program's log there, and must follow no link
    managed.directory(name="Logs directory", path=data.logs_dir, user="root", group="root", mode="755")


def interrupted_dpkg():
    """A kill during an install leaves dpkg "interrupted" (its journal in DPKG_UPDATES), and every later
    install fails until `dpkg --configure -a` finishes it."""
    def converge():
        if host.get_fact(FindFiles, path=DPKG_UPDATES, fname=DPKG_JOURNAL, quote_path=True):
            yield "DEBIAN_FRONTEND=noninteractive dpkg --configure -a"
    managed.declare(listings=[(DPKG_UPDATES, DPKG_JOURNAL)])
    return managed.checked(name="Finish an interrupted package install", unchanged="dpkg was not interrupted",
                           matches=lambda seen: not seen["lists"].get(f"{DPKG_UPDATES}/{DPKG_JOURNAL}"),
                           converge=converge)
