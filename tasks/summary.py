"""After an apply to vast instances (inventory.py with RED_VAST): what to open on each, printed once
the run is over: the portal, the desktop and Jupyter at the external ports vast mapped, the SSH
line, and where each secret lives on the instance (never the secret itself)."""
import atexit
import sys

from pyinfra import host

from tasks.desktop import PASSWORD_FILE as VNC_PASSWORD_FILE
from tasks.jupyter import TOKEN_FILE as JUPYTER_TOKEN_FILE
from tasks.portal import TOKEN_FILE as PORTAL_TOKEN_FILE

_desks = {}  # host name -> its lines


def summary():
    """Keeps this host's lines (vast instances only) for the print at the end of the run."""
    data = host.data
    if data.get("vast_id") is None or data.phase != "provision":
        return
    if not _desks:
        atexit.register(print_desks)
    _desks[host.name] = desk_lines(data)


def desk_lines(data):
    address = str(data.get("vast_public_ipaddr") or data.ssh_hostname).strip()
    ports = data.get("vast_ports") or {}

    def url(what, port):
        mapped = [entry.get("HostPort") for entry in ports.get(f"{port}/tcp") or [] if entry.get("HostPort")]
        if not mapped:
            return f"{what:8} port {port} is not mapped on this instance: create it with -p {port}:{port}"
        return f"{what:8} http://{address}:{mapped[0]}/"
    where = "on the instance, root only"
    if data.access == "portal":
        lines = [f"{url('portal', data.portal_port)}   token: {PORTAL_TOKEN_FILE} ({where}); "
                 "vast's Open button carries it",
                 f"{url('desktop', data.novnc_port)}   through the portal (its token)",
                 f"{url('jupyter', data.jupyter_port)}   through the portal (its token)"]
    else:
        lines = [f"{url('desktop', data.novnc_port)}   password: {VNC_PASSWORD_FILE} ({where})",
                 f"{url('jupyter', data.jupyter_port)}   token: {JUPYTER_TOKEN_FILE} ({where})"]
    return [*lines, f"{'ssh':8} ssh -p {data.ssh_port} root@{data.ssh_hostname}"]


def print_desks():
    print("\nYour desks (RED_VAST):", file=sys.stderr)
    for name, lines in _desks.items():
        print(f"  {name}", file=sys.stderr)
        for line in lines:
            print(f"    {line}", file=sys.stderr)
