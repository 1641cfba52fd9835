"""Git checkouts that never lose work: the revision is resolved once per run, on the controller,
and the target's checkout is moved to it by the steps `plan` chooses from what is there."""
import re
import shlex
import subprocess
import threading
from dataclasses import asdict, dataclass

from tasks import facts

COMMIT = re.compile(r"[0-9a-f]{40}")


class RefError(Exception):
    """One line: the ref, the repository, and why it cannot be used."""


@dataclass(frozen=True)
class Pin:
    """What a ref named when it was resolved: a tag or a commit names the same commit for good (a start
    needs no network for it); a branch is asked again."""
    repo: str
    ref: str
    commit: str
    kind: str  # "tag", "branch" or "commit"

    def moves(self):
        return self.kind == "branch"

    def as_dict(self):
        return asdict(self)


def resolve(repo, ref, timeout=120):
    """The Pin of `ref` (a branch, a tag or a full commit hash) in `repo`, asked once per run: every
    host's deploy asks, and those that ask while the question is out (pyinfra runs them side by side,
    each waiting on the network in turn) wait for its answer, a RefError included."""
    key = (repo, ref, timeout)
    with ASKING.setdefault(key, threading.Lock()):  # threading's Lock is gevent's under pyinfra's CLI
        if key not in ANSWERS:
            try:
                ANSWERS[key] = ask(repo, ref, timeout)
            except RefError as error:
                ANSWERS[key] = str(error)
    if isinstance(ANSWERS[key], str):
        raise RefError(ANSWERS[key])
    return ANSWERS[key]


ASKING = {}  # (repo, ref, timeout) -> the lock held while it is asked
ANSWERS = {}  # (repo, ref, timeout) -> its Pin, or why it cannot be used


def ask(repo, ref, timeout):
    """`ref`'s Pin, asked of `repo` now (git ls-remote)."""
    if COMMIT.fullmatch(ref):
        return Pin(repo, ref, ref, "commit")
    try:
        # an annotated tag's commit is listed as the peeled ref TAG^{}, only when asked for
        done = subprocess.run(["git", "ls-remote", "--", repo, ref, f"{ref}^{{}}"], capture_output=True, text=True,
                              timeout=timeout, env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin:/usr/local/bin"})
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RefError(f"cannot ask {repo} for {ref!r}: {error}") from None
    if done.returncode:
        reason = (done.stderr.strip().splitlines() or ["git ls-remote failed"])[-1]
        raise RefError(f"cannot ask {repo} for {ref!r}: {reason}")
    refs = {name: sha for sha, name in (line.split("\t", 1) for line in done.stdout.splitlines() if "\t" in line)}
    for name, kind in ((f"refs/tags/{ref}^{{}}", "tag"), (f"refs/tags/{ref}", "tag"), (f"refs/heads/{ref}", "branch")):
        if name in refs:
            return Pin(repo, ref, refs[name], kind)
    raise RefError(f"{ref!r} is no branch or tag of {repo} (a commit must be given as its full 40-character hash)")


def plan(state, repo, ref, commit, path, stamp, user):
    """(what the operator is told, shell commands) that put `path` at `commit` of `repo`, from the
    checkout's state (facts.parse_checkout). Every command runs as `user`, who owns the checkout
    (its config and hooks are that user's: root never runs them). Nothing is ever deleted: a
    directory in the way is moved aside, modified tracked files are stashed, and a HEAD no ref holds
    gets a branch. A clone is made beside the path and moved into place, so an interrupted one never
    looks like a checkout."""
    def as_user(command):
        return facts.as_user(user, command)
    git = as_user(f"git -C {shlex.quote(path)}")
    partial = f"{path}.red-clone-{stamp}"  # an interrupted clone is left beside the path, never in it
    clone = [as_user(f"git clone --quiet --no-checkout -- {shlex.quote(repo)} {shlex.quote(partial)}"),
             as_user(f"git -C {shlex.quote(partial)} checkout --quiet --detach {commit}"),
             as_user(f"mv -T {shlex.quote(partial)} {shlex.quote(path)}")]
    aside = f"{path}.moved-aside-{stamp}"
    kind = state.get("state", "missing")
    if kind in ("missing", "empty"):
        remove_empty = [as_user(f"rmdir {shlex.quote(path)}")] if kind == "empty" else []
        return [f"cloning {repo} at {ref} into {path}"], remove_empty + clone
    if kind == "other" or state.get("origin") != repo:
        what = "is not a git checkout" if kind == "other" else f"is a checkout of {state.get('origin') or 'no remote'}"
        return ([f"{path} {what}: moved aside to {aside} (nothing in it is deleted), then cloning {repo}"],
                [as_user(f"mv {shlex.quote(path)} {shlex.quote(aside)}")] + clone)
    if state.get("head") == commit:
        return [], []
    notes, commands = [], []
    if state.get("dirty"):
        message = f"red: local changes before moving to {ref} ({stamp})"
        notes.append(f"{path} has local changes: kept in a stash named {message!r} "
                     f"(see `git stash list`; `git stash pop` brings them back)")
        commands.append(f"{git} stash push --quiet --message {shlex.quote(message)}")
    if not state.get("held"):
        branch = f"red-kept-{stamp}"
        notes.append(f"{path} is at commits that no branch or tag holds: kept on the branch {branch}")
        commands.append(f"{git} branch {branch} HEAD")
    notes.append(f"moving {path} to {ref} ({commit[:12]})")
    return notes, commands + [f"{git} fetch --quiet --tags origin", f"{git} checkout --quiet --detach {commit}"]
