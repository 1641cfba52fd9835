"""VisoMaster itself: its checkout (cloned or moved to visomaster_ref, never losing work), its
Python packages in their own environment (installed only when the requirements file changed),
its folders on the workspace, and the app on the desktop under supervisor."""
import json
import shlex

from pyinfra import host, logger
from pyinfra.api import QuoteString, StringCommand, deploy
from pyinfra.facts.files import File

from tasks import git, managed, services
from tasks.desktop import DISPLAY, WAIT_FOR_DISPLAY
from tasks.facts import as_user
from tasks.app_stage import DEPS_SCRIPT, PIP_LOG, checkout_folder, requirements_file
from tasks.models_stage import models_folder
from tasks.packages import APP
from tasks.secrets import SECRETS_DIR

LAUNCHER = "/usr/local/bin/red-visomaster"
PIN_FILE = f"{SECRETS_DIR}/visomaster-pin.json"  # what visomaster_ref named when last resolved
START_DEADLINE = 5  # seconds a start waits for the repository to name a branch's commit
# the app writes these relative to its folder: they live on the workspace, beside the checkout


def checkout_dir():
    return checkout_folder(host.data.visomaster_dir, host.data.workspace)


def models_dir():
    return models_folder(host.data.models_dir, host.data.workspace)


def workspace_folders():
    """Folders the app writes relative to its checkout, kept on the workspace (they outlast a new checkout)."""
    return {"model_assets": models_dir(), "tensorrt-engines": f"{host.data.workspace}/tensorrt-engines"}


@deploy("VisoMaster")
def visomaster(interpreter):
    data = host.data
    checkout = checkout_dir()
    managed.packages(name="Qt, ffmpeg and fonts for the app", packages=APP)
    for script in ("red-visomaster-deps", "red-import-check"):
        managed.put(name=script, src=f"files/visomaster/{script}", dest=f"/usr/local/bin/{script}", mode="755")
    pin = data.visomaster_pin = pinned(data.visomaster_repo, data.visomaster_ref)
    if isinstance(pin, git.Pin):
        managed.put(name="The ref's commit, for starts without the network", dest=PIN_FILE, user="root",
                    group="root", mode="600", src=(json.dumps(pin.as_dict(), sort_keys=True) + "\n").encode())
    stale_git_lock(checkout)
    code = [managed.checkout(name=f"Checkout at {data.visomaster_ref}", repo=data.visomaster_repo,
                             ref=data.visomaster_ref, path=checkout, user=data.desktop_user, pin=pin),
            python_packages(interpreter, checkout)]
    for name, folder in workspace_folders().items():
        managed.directory(name=f"Folder {folder}", path=folder, user=data.desktop_user, group=data.desktop_user,
                          mode="2775", by_user=True)
        managed.link(name=f"{name} on the workspace", path=f"{checkout}/{name}", target=folder,
                     user=data.desktop_user)
    managed.directory(name="Workspace folder output", path=f"{data.workspace}/output",
                      user=data.desktop_user, group=data.desktop_user, mode="2775", by_user=True)
    launcher = managed.template(name="Launcher", src="files/visomaster/red-visomaster.j2", dest=LAUNCHER, mode="755",
                                **launcher_values(data.desktop_user, data.visomaster_venv, checkout, data.workspace))
    services.program("visomaster", [LAUNCHER], user=data.desktop_user, directory=checkout, priority=50,
                     autostart=data.visomaster_autostart, restart_on=[launcher, *code])
    return code[0]


def launcher_values(user, venv, checkout, workspace):
    """The launcher's values, shell-quoted (it is a shell script)."""
    values = {"desktop_user": user, "venv": venv, "checkout": checkout, "caches": f"{workspace}/.cache",
              "display": DISPLAY, "wait_for_display": WAIT_FOR_DISPLAY}
    return {name: shlex.quote(value) for name, value in values.items()}


def pinned(repo, ref):
    """What `ref` names: resolved on the controller at a provision or a build; at a start, a tag or a
    commit is read back from PIN_FILE (no network), and a branch is asked with a short deadline. A
    git.RefError when it cannot be resolved, None when a start leaves the checkout as it is."""
    if host.data.phase != "start":
        try:
            return git.resolve(repo, ref)
        except git.RefError as error:
            return error
    saved = saved_pin()
    if saved and saved.repo == repo and saved.ref == ref and not saved.moves():
        return saved
    try:
        return git.resolve(repo, ref, timeout=START_DEADLINE)
    except git.RefError as error:
        logger.warning(f"[{host.name}] the checkout stays as it is: {error}")
        return None


def saved_pin():
    """PIN_FILE as the last build or provision left it (a start runs on the target itself)."""
    try:
        with open(PIN_FILE) as handle:
            return git.Pin(**json.load(handle))
    except (OSError, ValueError, TypeError):
        return None


def stale_git_lock(checkout):
    """A git lock that no git process holds (git was killed) is removed, or every git step would fail."""
    lock = f"{checkout}/.git/index.lock"
    managed.declare(paths=[lock])
    command = f"if ! pgrep -x git >/dev/null; then {as_user(host.data.desktop_user, f'rm -f {shlex.quote(lock)}')}; fi"

    def converge():
        if host.get_fact(File, path=lock):
            yield command
    return managed.checked(name="Remove a git lock left by a killed git", unchanged="no lock",
                           matches=lambda seen: lock not in seen["paths"], converge=converge)


def python_packages(interpreter, checkout):
    """Installed when the checkout's requirements file differs from the one the environment in
    use was made from (kept inside it): a no-op apply runs no pip."""
    data = host.data
    requirements = requirements_file(checkout, data.cuda_flavour)
    return managed.until_copied(
        name=f"Python packages (requirements_{data.cuda_flavour}.txt)", unchanged="installed, as the file says",
        source=requirements, copy=f"{data.visomaster_venv}/red-requirements.txt",  # the deps script copies it
        command=StringCommand(DEPS_SCRIPT, data.desktop_user, interpreter.command, QuoteString(data.visomaster_venv),
                              QuoteString(requirements), QuoteString(checkout),
                              QuoteString(f"{data.logs_dir}/{PIP_LOG}")),
    )
