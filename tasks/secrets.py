"""Secrets on the target: a given one is written without a diff and never on a command line;
a missing one is generated once on the target itself and kept. Both live in SECRETS_DIR."""
import hashlib
import io

from pyinfra import host
from pyinfra.api import FileUploadCommand, operation
from pyinfra.facts.files import File, Sha256File
from pyinfra.operations import files

SECRETS_DIR = "/etc/red"  # root only (0700): what is inside is unreadable to others whatever its mode


@operation()
def given(path, secret):
    """The file holds `secret` (one line), root only; compared by digest, uploaded without a diff."""
    content = (secret + "\n").encode()
    if host.get_fact(Sha256File, path=path) != hashlib.sha256(content).hexdigest():
        host.log(f"Will write the secret {path} (not shown)")
        yield FileUploadCommand(io.BytesIO(content), path, remote_temp_filename=host.get_temp_filename(path))
    yield from files.file._inner(path=path, user="root", group="root", mode="600")


@operation()
def generated(path, length):
    """A random secret of `length` characters, made on the target when the file is missing."""
    if host.get_fact(File, path=path):
        host.noop(f"{path} exists: kept")
        return
    yield (f"umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(32)[:{length}])' > {path}.new "
           f"&& mv {path}.new {path}")
