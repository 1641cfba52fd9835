"""Who Red deploys to.

- RED_HOSTS: a JSON list of hosts, each {"address", "port", "user", "key"} (optional: "name", and
  "data", settings for that host alone);
- else RED_HOST (with RED_SSH_PORT, RED_SSH_USER, RED_SSH_KEY): one host, e.g. a vast instance;
- else, with RED_VAST=1 (or RED_VAST_LABEL=LABEL, or RED_VAST_IDS=ID,ID), the account's running
  vast instances from vast's API (vast.py), each named by its label (else vast-ID), as root with
  RED_SSH_KEY or the user's default key; RED_VAST_DATA='{"NAME": {...}}' gives one instance
  settings of its own (and its own "ssh_key");
- else every local sandbox host that is up (tests/sandbox.py up NAME --port PORT).
Hosts named on pyinfra's command line instead of this file get the same group_data defaults.
"""
import glob
import json
import os

SANDBOX_HOSTS = os.environ.get("RED_SANDBOX_HOSTS", "/var/tmp/red-sandbox")


def ssh_host(address, port=22, user="root", key=None, name=None, data=None, **_):
    """An SSH host; `data` holds settings for this host alone (e.g. its own ports)."""
    data = {**(data or {}), "ssh_hostname": address, "ssh_port": int(port), "ssh_user": user}
    if key:
        data["ssh_key"] = key
    if address in ("127.0.0.1", "::1"):
        # sandbox hosts get new host keys each time they are made
        data.update(ssh_known_hosts_file="/dev/null", ssh_strict_host_key_checking="no")
    return (name or f"{address}:{port}", data)


def named_hosts():
    if os.environ.get("RED_HOSTS"):
        return [ssh_host(**entry) for entry in json.loads(os.environ["RED_HOSTS"])]
    if os.environ.get("RED_HOST"):
        return [ssh_host(os.environ["RED_HOST"], os.environ.get("RED_SSH_PORT", 22),
                         os.environ.get("RED_SSH_USER", "root"), os.environ.get("RED_SSH_KEY"))]
    return None


def vast_hosts():
    if os.environ.get("RED_VAST", "") in ("", "0") and not os.environ.get("RED_VAST_LABEL") \
            and not os.environ.get("RED_VAST_IDS"):
        return None
    import vast
    try:  # checked before vast is asked anything
        own = json.loads(os.environ.get("RED_VAST_DATA") or "{}")
        assert isinstance(own, dict) and all(isinstance(data, dict) for data in own.values())
    except (ValueError, AssertionError):
        raise SystemExit('RED_VAST_DATA is not {"NAME": {"setting": value, ...}, ...} (JSON)') from None
    try:
        found = vast.hosts()
    except vast.VastError as error:
        raise SystemExit(str(error)) from None
    return [ssh_host(address, port, "root", own.get(name, {}).get("ssh_key") or os.environ.get("RED_SSH_KEY"),
                     name, {**data, **own.get(name, {})})
            for address, port, name, data in found]


def sandbox_hosts():
    hosts = []
    for path in sorted(glob.glob(f"{SANDBOX_HOSTS}/*/host.json")):
        with open(path) as handle:
            hosts.append(ssh_host(**json.load(handle)))
    return hosts


instances = named_hosts() or vast_hosts() or sandbox_hosts()
