"""The models of an image built with MODELS_AT=build, fetched in a Docker stage of their own that comes
before Red's files (see the Dockerfile): a change to a task builds the image again without fetching
them again, and they stay one layer that a push does not send again. It runs before the controller's
venv exists, so it needs only the standard library and tasks/settings.py:

    python3 -m tasks.models_stage --data models_at=build [--data NAME=VALUE ...]

The settings are resolved and checked as the deploy does (group_data/all.py, then --data). The deploy
that follows verifies what this stage left by red-models' marker, hashing nothing: when the list has
changed since (a branch that moved), it fetches what is missing as it would without this stage."""
import os
import posixpath
import re
import shlex
import subprocess
import sys
import tempfile

from tasks.packages import run
from tasks.settings import SettingError, build_stage_settings

FETCHER = "/usr/local/bin/red-models"
STATUS = ".red-status.json"  # in models_dir
DONE_MARKER = ".red-fetched"  # in models_dir: the list's digest, and each file's size and mtime once verified
TABLE = "app/processors/models_data.py"  # the app's own model table, in its checkout
SEED = "/var/lib/red/workspace-seed"  # what the image keeps of its workspace for one mounted empty
FULL_COMMIT = re.compile(r"[0-9a-f]{40}")  # a commit, as git.resolve tells it from a branch or a tag


def models_folder(models_dir, workspace):
    """The models' folder: the setting models_dir, else <workspace>/models."""
    return models_dir or f"{workspace}/models"


def seeded_entry(folder, workspace):
    """The workspace entry this stage links into the image's seed, and the deploy's seed then keeps: the
    models folder's name when it lies directly in the workspace, else None (the deploy links the whole
    entry that holds a deeper folder)."""
    return posixpath.basename(folder) if posixpath.dirname(folder) == workspace else None


def fetcher_argv(settings, listed):
    """red-models' command line for the list `listed` (the manifest, or a model table)."""
    folder = models_folder(settings["models_dir"], settings["workspace"])
    source = ["--manifest", listed] if settings["models_manifest"] else ["--table", listed]
    mirror = ["--base-url", settings["models_base_url"]] if settings["models_base_url"] else []
    return [FETCHER, *source, "--dir", folder, "--connections", str(settings["models_connections"]), *mirror,
            "--status", f"{folder}/{STATUS}"]


def fetch_table(repo, ref, folder):
    """The app's model table at `ref` (a branch, a tag or a full commit hash), in `folder`."""
    environment = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    if FULL_COMMIT.fullmatch(ref):
        run("git", "clone", "--quiet", "--no-checkout", "--", repo, folder, env=environment)
    else:
        run("git", "clone", "--quiet", "--no-checkout", "--depth", "1", "--branch", ref, "--", repo, folder,
            env=environment)
        ref = "HEAD"
    run("git", "-C", folder, "checkout", "--quiet", ref, "--", TABLE, env=environment)
    return f"{folder}/{TABLE}"


def owned_workspace(user, workspace):
    """The desktop user as the deploy makes it (its home, bash) and the workspace it writes in, so that
    what a stage leaves there is that user's."""
    if subprocess.run(["id", "-u", user], capture_output=True).returncode:
        run("useradd", "--create-home", "--home-dir", f"/home/{user}", "--shell", "/bin/bash", user)
    run("install", "-d", "-o", "root", "-g", user, "-m", "2775", workspace)


def fetched(settings):
    """The models fetched and verified into models_dir, owned by the desktop user, and linked into the
    seed in this same layer (hard links: the files are in the image once)."""
    user, workspace = settings["desktop_user"], settings["workspace"]
    folder = models_folder(settings["models_dir"], workspace)
    owned_workspace(user, workspace)
    run("install", "-d", "-o", user, "-g", user, "-m", "2775", folder)
    with tempfile.TemporaryDirectory() as scratch:
        listed = settings["models_manifest"] or fetch_table(settings["visomaster_repo"], settings["visomaster_ref"],
                                                            f"{scratch}/app")
        run(*fetcher_argv(settings, listed), "--done", f"{folder}/{DONE_MARKER}")
    run("chown", "-R", f"{user}:{user}", "--", folder)
    if entry := seeded_entry(folder, workspace):
        run("mkdir", "-p", "--", SEED)
        run("cp", "-al", "--", folder, f"{SEED}/{entry}")


def main(argv):
    try:
        settings, _ = build_stage_settings(argv)
    except SettingError as error:
        raise SystemExit(f"red: {error}") from None
    if settings["models_at"] != "build":
        print("red: models_at is not build: the image's models are not fetched here")
        return
    if settings["models_manifest"] and not os.path.isfile(settings["models_manifest"]):
        print(f"red: the manifest {shlex.quote(settings['models_manifest'])} is not in the image yet: the deploy "
              "fetches the models")
        return
    fetched(settings)


if __name__ == "__main__":
    main(sys.argv[1:])
