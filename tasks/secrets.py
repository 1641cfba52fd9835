"""Secrets on the target: a given one is written without a diff and never on a command line;
a missing one is generated once on the target itself and kept. Both live in SECRETS_DIR."""
from pyinfra import host
from pyinfra.facts.files import File

from tasks import managed

SECRETS_DIR = "/etc/red"  # root only (0700): what is inside is unreadable to others whatever its mode


def given(name, path, secret):
    """The file holds `secret` (one line), root only; compared by digest, uploaded without a diff."""
    return managed.put(name=name, src=(secret + "\n").encode(), dest=path, user="root", group="root", mode="600",
                       secret=True)


def generated(name, path, length):
    """A random secret of `length` characters, made on the target when the file is missing."""
    def converge():
        if not host.get_fact(File, path=path):
            yield (f"umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(32)[:{length}])' "
                   f"> {path}.new && mv {path}.new {path}")
    managed.declare(files=[path])  # by digest, like a given one: the snapshot asks the same whichever it is
    return managed.checked(name=name, unchanged=f"{path} exists: kept", contained=True,
                           matches=lambda seen: managed.path_matches(seen, path, "file"), converge=converge)
