"""Secrets on the target: a given one is written without a diff and never on a command line;
a missing one is generated once on the target itself and kept. Both live in SECRETS_DIR. Neither
the secret nor a fast digest of it ever leaves the target: a given one is compared by a slow,
salted digest kept beside it (root only), and a generated one only by its presence."""
import hashlib
import io

from pyinfra import host
from pyinfra.api import FileUploadCommand
from pyinfra.facts.files import File
from pyinfra.operations import files

from tasks import managed

SECRETS_DIR = "/etc/red"  # root only (0700): what is inside is unreadable to others whatever its mode
DIGEST = "{path}.scrypt"  # beside each given secret


def slow_digest(secret, path):
    """scrypt of the secret, salted by its path: what a snapshot may show of it (a GPU guesses a
    short password from a SHA-256 in moments; from this, hardly)."""
    return hashlib.scrypt(secret.encode(), salt=f"red:{path}".encode(), n=2**14, r=8, p=1, dklen=32).hex()


def given(name, path, secret):
    """The file holds `secret` (one line), root only; uploaded without a diff when its digest
    (DIGEST) differs."""
    digest_path = DIGEST.format(path=path)
    digest = (slow_digest(secret, path) + "\n").encode()

    def write(content, dest):
        yield FileUploadCommand(io.BytesIO(content), dest, remote_temp_filename=host.get_temp_filename(dest))
        yield from files.file._inner(path=dest, user="root", group="root", mode="600")

    def converge():
        if managed.remote_sha256(digest_path) != managed.sha256(digest):
            host.log(f"Will write the secret {path} (not shown)")
            yield from write((secret + "\n").encode(), path)
            yield from write(digest, digest_path)
    managed.declare(files=[digest_path], paths=[path])
    return managed.checked(
        name=name, unchanged=f"{path} holds it (compared by its slow digest)", contained=True,
        matches=lambda seen: (managed.path_matches(seen, path, "file", "600", "root", "root")
                              and seen["sha256"].get(digest_path) == managed.sha256(digest)),
        converge=converge,
    )


def generated(name, path, length):
    """A random secret of `length` characters, made on the target when the file is missing."""
    def converge():
        if not host.get_fact(File, path=path):
            yield (f"umask 077 && python3 -I -c 'import secrets; print(secrets.token_urlsafe(32)[:{length}])' "
                   f"> {path}.new && mv {path}.new {path}")
    # by its presence only (no digest of it leaves the target); the snapshot asks what it asks for a
    # given one, so that a switch between the two does not change the snapshot's request
    managed.declare(paths=[path], files=[DIGEST.format(path=path)])
    return managed.checked(name=name, unchanged=f"{path} exists: kept", contained=True,
                           matches=lambda seen: managed.path_matches(seen, path, "file"), converge=converge)


def absent(name, path):
    """No such secret file (nor its digest): a secret given before and no longer."""
    digest_path = DIGEST.format(path=path)

    def converge():
        for dest in (path, digest_path):
            yield from files.file._inner(path=dest, present=False)
    managed.declare(files=[digest_path], paths=[path])
    return managed.checked(name=name, unchanged=f"{path} is absent", contained=True,
                           matches=lambda seen: path not in seen["paths"] and digest_path not in seen["paths"],
                           converge=converge)
