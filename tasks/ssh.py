"""SSH: OpenSSH's server under supervisor, key-only, with host keys that stay what the user's
known_hosts learned. Keys made in an image build are replaced once, at each container's first
start, so that no two instances of an image share them."""
from pyinfra import host
from pyinfra.api import deploy

from tasks import managed, services
from tasks.packages import SSH

CONFIG = "/etc/ssh/sshd_config.d/red.conf"  # Debian's and Ubuntu's sshd_config include this folder first
HOST_KEYS_MARKER = "/etc/ssh/red-host-keys"  # "build": made in an image build; "instance": this host's own


@deploy("SSH")
def ssh():
    data = host.data
    managed.packages(name="OpenSSH server", packages=SSH)
    privsep = managed.directory(name="Privilege separation folder /run/sshd", path="/run/sshd", user="root",
                                group="root", mode="755")
    keys = host_keys()
    config = managed.template(name="Key-only configuration", src="files/ssh/red.conf.j2", dest=CONFIG,
                              mode="644", port=data.sshd_port)
    # sshd reads authorized_keys at each login: new keys need no restart
    managed.authorized_keys(name="Authorized keys for root", user="root",
                            keys=data.ssh_authorized_keys + data.instance_public_keys)
    if not services.held_by_another("SSH", data.sshd_port):  # vast's own sshd, in its SSH launch mode
        services.program("sshd", ["/usr/sbin/sshd", "-D", "-e"], priority=5, restart_on=[privsep, keys, config])


def host_keys():
    """Made once per host; in an image build marked as the image's, and replaced at the first start."""
    if host.data.phase == "build":
        commands, kind = ["ssh-keygen -A"], "build"
    else:
        commands = [f"if grep -qx build {HOST_KEYS_MARKER} 2>/dev/null; then rm -f /etc/ssh/ssh_host_*key*; fi",
                    "ssh-keygen -A"]
        kind = "instance"
    return managed.once(name=f"Host keys ({'the image' if kind == 'build' else 'this instance'}'s, made once)",
                        commands=commands, marker=HOST_KEYS_MARKER, key=kind)
