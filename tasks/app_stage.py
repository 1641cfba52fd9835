"""The app's checkout and its environment in an image, made in a Docker stage of their own before Red's
files (see the Dockerfile): a change to a task installs none of the app's packages again. Like the
models stage, it runs on the standard library and the settings alone:

    python3 -m tasks.app_stage [--data NAME=VALUE ...]

It clones visomaster_ref as the deploy does (as the desktop user, detached at the ref's commit) and
runs the deploy's own dependency script (red-visomaster-deps), then adds the Jupyter kernel's package.
The deploy that follows finds the checkout at its commit and the environment made from its
requirements file, and installs nothing; when the ref has moved since this layer was built (a branch),
it moves the checkout and installs what changed, as it would without this stage."""
import os
import platform
import shutil
import subprocess
import sys

from tasks.models_stage import FULL_COMMIT, owned_workspace
from tasks.packages import APP_KERNEL_MARKER, app_kernel_install, interpreter, run
from tasks.settings import SettingError, build_stage_settings

DEPS_SCRIPT = "/usr/local/bin/red-visomaster-deps"
PIP_LOG = "visomaster-pip.log"  # in logs_dir


def checkout_folder(visomaster_dir, workspace):
    """The app's checkout: the setting visomaster_dir, else <workspace>/VisoMaster."""
    return visomaster_dir or f"{workspace}/VisoMaster"


def requirements_file(checkout, cuda_flavour):
    return f"{checkout}/requirements_{cuda_flavour}.txt"


def as_user(user, *argv):
    """argv run as `user` with that user's home (root runs nothing the checkout holds)."""
    return ["runuser", "-u", user, "--", "env", f"HOME=/home/{user}", *argv]


def commit_of(clone, ref, user):
    """The commit `ref` names in a fresh clone, looked up as git.resolve does: a tag, else a branch."""
    if FULL_COMMIT.fullmatch(ref):
        return ref
    for name in (f"refs/tags/{ref}^{{commit}}", f"refs/remotes/origin/{ref}^{{commit}}"):
        found = subprocess.run(as_user(user, "git", "-C", clone, "rev-parse", "--verify", "--quiet", name),
                               capture_output=True, text=True)
        if found.returncode == 0:
            return found.stdout.strip()
    raise SystemExit(f"red: visomaster_ref {ref!r} is no branch or tag of the repository")


def cloned(repo, ref, checkout, user):
    """The checkout as the deploy's clone leaves it (git.plan): made beside its place, detached at the commit."""
    partial = f"{checkout}.red-clone-stage"
    run(*as_user(user, "git", "clone", "--quiet", "--no-checkout", "--", repo, partial),
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    run(*as_user(user, "git", "-C", partial, "checkout", "--quiet", "--detach", commit_of(partial, ref, user)))
    run(*as_user(user, "mv", "-T", partial, checkout))


def installed(settings, python, checkout):
    """The app's environment from the checkout's requirements (the deploy's script: a link to the new
    environment once the app imports), then the kernel's package in it and its marker."""
    user, venv = settings["desktop_user"], settings["visomaster_venv"]
    run("install", "-d", "-o", "root", "-g", "root", "-m", "755", settings["logs_dir"])
    run(DEPS_SCRIPT, user, python.command, venv, requirements_file(checkout, settings["cuda_flavour"]), checkout,
        f"{settings['logs_dir']}/{PIP_LOG}")
    run(*as_user(user, *app_kernel_install(venv)))
    run(*as_user(user, "touch", f"{venv}/{APP_KERNEL_MARKER}"))


def main(argv):
    try:
        settings, sources = build_stage_settings(argv)
        python = interpreter(platform.freedesktop_os_release(), settings["python_version"], sources["python_version"])
    except SettingError as error:
        raise SystemExit(f"red: {error}") from None
    if not shutil.which(python.command):
        print(f"red: {python.command} comes with the deploy (deadsnakes' PPA): the app's environment is made there")
        return
    user = settings["desktop_user"]
    owned_workspace(user, settings["workspace"])
    checkout = checkout_folder(settings["visomaster_dir"], settings["workspace"])
    if not os.path.exists(checkout):
        cloned(settings["visomaster_repo"], settings["visomaster_ref"], checkout, user)
    installed(settings, python, checkout)


if __name__ == "__main__":
    main(sys.argv[1:])
