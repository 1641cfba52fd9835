"""Red on the instance itself, so that onstart.sh can re-apply it at every container start:
the settings this run used (for the start phase), and, when deploying from elsewhere, a copy of
Red with its own venv at red_dir."""
import hashlib
import io
import os
import shlex
import tarfile
from functools import lru_cache
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.connectors.local import LocalConnector
from pyinfra.operations import server

from tasks import managed
from tasks.settings import SAVED_SETTINGS

PROJECT = Path(__file__).resolve().parent.parent
SHIPPED = ["deploy.py", "onstart.sh", "requirements.txt", "group_data", "tasks", "files"]
RELEASE = ".red-release.tar"  # the copy as shipped; unpacked when it changed
REQUIREMENTS_MARKER = "venv/.requirements.sha256"  # requirements.txt's hash at the last good install


@lru_cache(maxsize=1)
def release_tarball():
    """Red's files as a reproducible tar (sorted, no times or owners): the same bytes every run."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for top in SHIPPED:
            paths = [PROJECT / top] if (PROJECT / top).is_file() else sorted((PROJECT / top).rglob("*"))
            for path in paths:
                if path.is_file() and "__pycache__" not in path.parts:
                    info = tar.gettarinfo(str(path), arcname=str(path.relative_to(PROJECT)))
                    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
                    with open(path, "rb") as handle:
                        tar.addfile(info, handle)
    return buffer.getvalue()


def runs_from_red_dir():
    """True when this run is Red's own copy on the target (an image build, onstart.sh)."""
    return isinstance(host.connector, LocalConnector) and os.path.realpath(PROJECT) == host.data.red_dir


@deploy("Red on the instance")
def red_on_instance(saved_settings):
    managed.put(
        name=f"Settings for the start phase ({SAVED_SETTINGS})",
        src=managed.json_content(saved_settings, indent=2),
        dest=SAVED_SETTINGS, user="root", group="root", mode="600",
    )
    if runs_from_red_dir():
        return
    red_dir = host.data.red_dir
    release = managed.put(
        name=f"Red's files for onstart.sh ({red_dir})",
        src=release_tarball(), dest=f"{red_dir}/{RELEASE}", mode="600",
    )
    server.shell(
        name="Unpack Red's files",
        commands=[f"cd {shlex.quote(red_dir)} && rm -rf {' '.join(SHIPPED)} && tar -xf {RELEASE} --no-same-owner"],
        _if=release.did_change,
    )
    requirements = hashlib.sha256((PROJECT / "requirements.txt").read_bytes()).hexdigest()
    managed.once(
        name="Red's venv (pyinfra for onstart.sh)",
        commands=[f"cd {shlex.quote(red_dir)} && python3 -m venv venv && venv/bin/pip install -q "
                  "--disable-pip-version-check -r requirements.txt"],
        marker=f"{red_dir}/{REQUIREMENTS_MARKER}", key=requirements,
    )
