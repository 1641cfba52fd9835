"""Red's own operations: files, templates, directories, links, packages, users, git checkouts,
authorized keys, one-off steps and the files a folder may hold. Each one is checked against one
snapshot of the target, taken in a single remote command per run for everything the deploy declares;
only what differs runs pyinfra's own operation. A no-op apply therefore costs one command, however
much the deploy manages, and every operation still appears in pyinfra's results.

A snapshot describes exactly one request (what was declared) and is trusted only until an operation
changes something beyond its own item (a package, a user, a checkout, a shell step); then the next
operation retakes it (one command). Each run also leaves
the snapshot command on the target as a script (one per phase), and the run's first command (which
reads the instance's environment anyway) runs it: when the deploy declares the same things again, the
snapshot is already there, and a run with nothing to do sends that one command only. With the
setting `snapshot` off, every operation asks the target for itself, as pyinfra's do.
"""
import base64
import hashlib
import io
import itertools
import json
import logging
import os
import pickle
import posixpath
import shlex
import time
from dataclasses import dataclass, field
from functools import lru_cache

import jinja2
import jinja2.meta
from pyinfra import host, logger, state
from pyinfra.api import FunctionCommand, operation
from pyinfra.api.util import get_template
from pyinfra.connectors.local import LocalConnector
from pyinfra.context import ctx_host
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import Directory, FindFiles, Link, Sha256File
from pyinfra.operations import apt, files, server
from pyinfra.operations.util.files import ensure_mode_int

from tasks import controller, git
from tasks.facts import Checkout, FirstLook, Probe, Snapshot, as_user, as_user_script, snapshot_command

SNAPSHOT_SCRIPTS = "/etc/red/snapshot-{phase}"  # in Red's root-only folder
# A repaired file up to INLINE_LIMIT travels inside one shell command with the others repaired next to
# it (see inline_batch), up to COMMAND_LIMIT in all: sshd hands the command to the shell as a single
# argument, which Linux caps at 128 KiB (MAX_ARG_STRLEN). Base64 adds a third. Larger files go by SFTP.
INLINE_LIMIT = 48 << 10
COMMAND_LIMIT = 100 << 10


@dataclass(eq=False)
class Step:
    """One of Red's checked operations, as declared: its test against the snapshot and, for a small
    managed file, what to write inline (dest, content, user, group, mode)."""
    matches: object
    inline: tuple = None


@dataclass
class Declared:
    """What one host's deploy manages, as the tasks declare it, and the last snapshot of it."""
    paths: set = field(default_factory=set)  # stat: type, mode, owner
    files: set = field(default_factory=set)  # and SHA-256
    packages: set = field(default_factory=set)
    users: set = field(default_factory=set)
    listings: set = field(default_factory=set)  # (folder, pattern)
    supervisor: str = ""  # supervisord's socket: its pid and its programs' states
    checkouts: set = field(default_factory=set)  # git checkouts: origin, HEAD, local changes
    links: set = field(default_factory=set)  # symbolic links: their targets
    lines: set = field(default_factory=set)  # (file, (line, ...)): which of the lines it holds
    probes: set = field(default_factory=set)  # (name, command): a task's own question (facts.Probe)
    contained: set = field(default_factory=set)  # operations that change only their own item
    by_hash: dict = field(default_factory=dict)  # operation hash -> its checked step (None: more than one)
    written: set = field(default_factory=set)  # files an earlier operation's inline repair wrote
    snapshot: dict = None
    taken: tuple = ()  # (the request's digest, operations changed) when the snapshot was taken
    made: tuple = ()  # (what was declared, as sizes; the request; its digest) when it was last made
    settled: int = 0  # how many of the host's first operations are complete (counted in settled_changes)
    settled_changes: int = 0

    def request(self):
        """(the snapshot command for everything declared so far, its digest). Made again only when
        something was declared since: each set only grows, so their sizes say whether it did."""
        sizes = (len(self.paths), len(self.files), len(self.packages), len(self.users), len(self.listings),
                 self.supervisor, len(self.checkouts), len(self.links), len(self.lines), len(self.probes))
        if not self.made or self.made[0] != sizes:
            command = snapshot_command(sorted(self.paths), sorted(self.files), sorted(self.packages),
                                       sorted(self.users), sorted(self.listings), self.supervisor,
                                       sorted(self.checkouts), sorted(self.links), sorted(self.lines),
                                       sorted(self.probes))
            self.made = (sizes, command, sha256(command.encode()))
        return self.made[1:]

    def hashed(self, step, op_hash):
        """Notes the operation hash of a checked step (known once pyinfra declared it); a hash two steps
        share maps to None (neither is the one step of that operation)."""
        self.by_hash[op_hash] = None if op_hash in self.by_hash else step


_declared = {}  # host name -> Declared


def declared():
    name = host.name
    record = _declared.get(name)
    if record is None:
        record = _declared[name] = Declared()
    return record


def declare(paths=(), files=(), packages=(), users=(), listings=(), supervisor="", checkouts=(), links=(),
            lines=(), probes=()):
    record = declared()
    record.paths.update(paths, files)
    record.files.update(files)
    record.packages.update(packages)
    record.users.update(users)
    record.listings.update(listings)
    record.checkouts.update(checkouts)
    record.links.update(links)
    record.lines.update(lines)
    record.probes.update(probes)
    record.supervisor = supervisor or record.supervisor


def changes_so_far(running=None):
    """Operations that have run on this host and changed something beyond their own item. A host's
    operations complete in order: the leading complete ones are counted once (`settled`), and each
    call looks only at the rest (a run asks this once per operation), up to the operation running now
    or about to (`running`; pyinfra runs a host's operations one after another: none after it has run)."""
    record = declared()
    operations = state.ops[host]
    for op_hash, op in itertools.islice(operations.items(), record.settled, None):
        meta = op.operation_meta
        if not meta.is_complete():
            break
        record.settled += 1
        record.settled_changes += op_hash not in record.contained and meta.did_change()
    later, running = 0, running or host.executing_op_hash
    for op_hash, op in itertools.islice(operations.items(), record.settled, None):
        if op_hash == running:
            break
        meta = op.operation_meta  # one that stayed incomplete (never run): the ones after it still count
        later += meta.is_complete() and op_hash not in record.contained and meta.did_change()
    return record.settled_changes + later


def snapshot():
    """The target as one command reports it, or None when the setting `snapshot` is off."""
    if not host.data.snapshot:
        return None
    record = declared()
    now = snapshot_key(record)
    if record.snapshot is None or record.taken != now:
        record.snapshot = host.get_fact(Snapshot, command=record.request()[0])
        record.taken = now
    return record.snapshot


def snapshot_key(record, running=None):
    """What the snapshot in hand must have been taken for to be used now: the digest of the request
    for what was declared, and the changes so far (up to `running`)."""
    return record.request()[1], changes_so_far(running)


def finds_nothing_to_do(_state, target, op_hash):
    """Whether `target`'s operation `op_hash` is a checked one that will find nothing to do without
    asking the target (controller.IN_PLACE): the snapshot it would use is the one in hand (taken for
    what was declared, nothing changed since) and shows its item as declared. Asked just before the
    operation runs; check then comes to the same verdict."""
    record = _declared.get(target.name)
    step = record.by_hash.get(op_hash) if record else None
    if step is None or record.snapshot is None:
        return False
    with ctx_host.use(target):
        return bool(target.data.snapshot and record.taken == snapshot_key(record, op_hash)
                    and step.matches(record.snapshot))


controller.IN_PLACE.append(finds_nothing_to_do)


def script_path():
    return SNAPSHOT_SCRIPTS.format(phase=host.data.phase)


def first_look(names, snapshot_on, lock, supervisor_config):
    """The run's first command (facts.FirstLook): the run lock when `lock` (held until the run ends),
    the instance's environment, its distribution, the ports something listens on (and whether
    the supervisord of `supervisor_config` runs it), and the snapshot the last run's script takes, which is
    used while the deploy declares the same."""
    local = isinstance(host.connector, LocalConnector)
    look = host.get_fact(FirstLook, names=names, script=script_path() if snapshot_on else None, lock=lock,
                         controller_pid=os.getpid() if local else None, supervisor_config=supervisor_config)
    saved = look["snapshot"]
    if saved and saved["request"]:  # the snapshot the last run left: used while the request is the same
        record = declared()
        record.snapshot, record.taken = saved, (saved["request"], 0)
    return look


def snapshot_script(name):
    """Leaves the snapshot command on the target for the next run's first command (see first_look)."""
    path = script_path()
    declare(files=[path])

    def script():  # made when it runs: by then every deploy file has declared what it manages
        command, digest = declared().request()
        return (f"#!/bin/sh\n# Red's snapshot, run by the next apply's first command (tasks/managed.py)\n"
                f"echo @request {digest}\n{command}\n").encode()
    return checked(
        name=name, unchanged=f"{path} is up to date", contained=True,
        matches=lambda seen: path_matches(seen, path, "file", "700", "root", "root", sha256(script())),
        converge=lambda: files.put._inner(src=io.BytesIO(script()), dest=path, user="root", group="root",
                                          mode="700"),
    )


def failed(message):
    """A command that fails its operation with `message` (an operation run with `_ignore_errors`
    then lets the run go on, and `failures_reported` names it at the end)."""
    def fail(state, host):
        host.log_styled(f"red: {message}", fg="red", log_func=logger.error)
        return False
    return FunctionCommand(fail, (), {})


@operation()
def failures_reported():
    """Fails the run naming every step that failed earlier and was let pass (`_ignore_errors`); no
    change when none did."""
    failed_steps = [", ".join(state.get_op_meta(op_hash).names) for op_hash, op in state.ops[host].items()
                    if op.operation_meta.is_complete() and op.operation_meta.did_error()]
    if not failed_steps:
        host.noop("every step succeeded")
        return
    yield failed(f"{len(failed_steps)} step(s) failed; everything else was applied: " + "; ".join(failed_steps))


def checked(matches, converge, unchanged, contained=False, inline=None, **arguments):
    """No change when the snapshot shows `matches(snapshot)`; otherwise pyinfra's own operation,
    `converge()`, asks the target and does what it must. A `contained` operation changes nothing
    but its own item, so its change leaves the snapshot trusted for everything else. `inline`: a
    small file (dest, content, user, group, mode), repaired inside one command (inline_batch)."""
    step = Step(matches, inline)
    meta = check(matches=matches, converge=converge, unchanged=unchanged, contained=contained, step=step,
                 **arguments)
    declared().hashed(step, meta._hash)
    return meta


@operation()
def check(matches, converge, unchanged, contained, step):
    if contained:
        declared().contained.add(host.current_op_hash)
    seen = snapshot()
    if seen is not None and matches(seen):
        if state.print_noop_info or logger.isEnabledFor(logging.DEBUG):  # else pyinfra prints nothing
            host.noop(unchanged)
        return
    if inlined(step, seen) and not state.config.DIFF and state.is_executing:
        yield from written_inline(step, seen)
        return
    yield from converge()


def inlined(step, seen):
    """Whether `step` repairs a small file whose folder is there (a new folder is pyinfra's to make)."""
    return (step.inline is not None and seen is not None
            and seen["paths"].get(posixpath.dirname(step.inline[0]), ("",))[0] == "directory")


def written_inline(step, seen):
    """This file and the small files the next operations would repair, up to the first other change,
    written by one command (atomically, each); the operations after it yield a command that sends
    nothing, so each still shows as changed."""
    record = declared()
    if step.inline[0] in record.written:
        yield FunctionCommand(lambda state, host: True, (), {})  # written by an earlier operation's command
        return
    batch = inline_batch(step, seen)
    yield inline_script([each.inline for each in batch])
    record.written.update(each.inline[0] for each in batch)  # resumed only once the command succeeded


def inline_batch(step, seen):
    """`step` and the steps after it that repair a small file, in order, skipping those the snapshot
    shows unchanged, up to the first step that would change anything else (or any operation that is
    not one of Red's checked ones: it could), within COMMAND_LIMIT."""
    by_hash = declared().by_hash
    mine = state.ops[host]
    order = [op_hash for op_hash in state.get_op_order() if op_hash in mine]
    batch, size = [step], inline_size(step.inline)
    for op_hash in order[order.index(host.current_op_hash) + 1:]:
        following = by_hash.get(op_hash)
        if following is None or (not inlined(following, seen) and not following.matches(seen)):
            break
        if not following.matches(seen):
            size += inline_size(following.inline)
            if size > COMMAND_LIMIT:
                break
            batch.append(following)
    return batch


def inline_size(inline):
    return len(inline[1]) * 4 // 3 + len(inline[0]) * 8 + 200


def inline_script(inlines):
    """One shell command that writes each file beside its place (mktemp), sets its owner and mode
    (a mode not given: the old file's, else 644), then renames it into place: a reader never sees half
    a file, and a cut leaves the old one. The content is base64 inside the command: no byte of it can
    end or break the command."""
    lines = ["umask 077", "t=", "trap 'rm -f \"$t\"' EXIT HUP INT TERM"]
    for dest, content, user, group, mode in inlines:
        quoted = shlex.quote(dest)
        owner = f"{user or ''}{':' + group if group else ''}"
        mode_set = (f'chmod {ensure_mode_int(mode)} "$t"' if mode else
                    f'{{ chmod --reference={quoted} "$t" 2>/dev/null || chmod 644 "$t"; }}')
        lines.append(" && ".join([
            f"t=$(mktemp {shlex.quote(dest + '.red-XXXXXX')})",
            f'printf %s {base64.b64encode(content).decode()} | base64 -d > "$t"',
            *([f'chown {shlex.quote(owner)} "$t"'] if owner else []), mode_set,
            f'mv -f "$t" {quoted}', "t="]) + " || exit 1")
    return "\n".join(lines)


def path_matches(seen, path, kind, mode=None, user=None, group=None, digest=None):
    """Whether the snapshot shows `path` as a `kind` ("file" or "directory") with these attributes."""
    entry = seen["paths"].get(path)
    if entry is None:
        return False
    seen_kind, seen_mode, seen_user, seen_group = entry
    return (seen_kind == kind and (mode is None or ensure_mode_int(mode) == seen_mode)
            and user in (None, seen_user) and group in (None, seen_group)
            and (digest is None or seen["sha256"].get(path) == digest))


def sha256(content):
    return hashlib.sha256(content).hexdigest()


def json_content(value, indent):
    """A managed JSON file's content: `value` with sorted keys, indented, and a final newline; made
    once per run for the same value (its compact form, which json's C encoder makes quickly, is the
    key: indenting runs json's Python encoder)."""
    return indented_json(json.dumps(value, sort_keys=True), indent)


@lru_cache(maxsize=None)
def indented_json(compact, indent):
    return (json.dumps(json.loads(compact), indent=indent, sort_keys=True) + "\n").encode()


@lru_cache(maxsize=None)
def content_digest(content):
    """sha256 of a file's content, made once per run for the same content (a rendering, a project file:
    the same bytes for every host)."""
    return sha256(content)


def remote_sha256(path):
    """The file's SHA-256 on the target, asked now (None when it is missing)."""
    return host.get_fact(Sha256File, path=path)


def project_path(src):
    return os.path.join(state.cwd, src) if state.cwd else src


@lru_cache(maxsize=None)
def project_file(path):
    """A project file's bytes, read once per run (Red's files do not change while it runs)."""
    with open(path, "rb") as handle:
        return handle.read()


def put(name, src, dest, user=None, group=None, mode=None):
    """files.put of a project file (a path) or of content (bytes)."""
    content = src if isinstance(src, bytes) else project_file(project_path(src))

    def converge():
        source = io.BytesIO(content) if isinstance(src, bytes) else project_path(src)
        yield from upload(source, content, dest, user, group, mode)
    return managed_file(name, dest, content, user, group, mode, converge)


def render(src, values):
    """A project template rendered here, as pyinfra renders it (bytes). A template that reads nothing of
    the host (rendered_once) is rendered once per run for each set of values: the same bytes for
    every host given the same values, its own rendering for a host given others."""
    path = project_path(src)
    try:
        key = (path, pickle.dumps(values)) if rendered_once(path) else None
    except (pickle.PicklingError, TypeError, AttributeError):  # values pickle cannot tell apart
        key = None
    if key is None:
        return render_now(path, values)
    content = RENDERED.get(key)
    if content is None:
        content = RENDERED[key] = render_now(path, values)
    return content


RENDERED = {}  # (template, its values pickled) -> what it rendered


def render_now(path, values):
    return get_template(path).render({"host": host, "state": state, "inventory": state.inventory,
                                      **values}).encode()


@lru_cache(maxsize=None)
def rendered_once(path):
    """Whether the template at `path` depends on its values alone: it names none of what pyinfra hands
    every template besides them (host, state, inventory) and takes in no other template."""
    with open(path) as handle:
        parsed = jinja2.Environment().parse(handle.read())
    return (not jinja2.meta.find_undeclared_variables(parsed) & {"host", "state", "inventory"}
            and not list(jinja2.meta.find_referenced_templates(parsed)))


def template(name, src, dest, user=None, group=None, mode=None, **values):
    """files.template: rendered here, as pyinfra renders it, compared by digest, and uploaded by files.put."""
    text = render(src, values).decode()
    return managed_file(name, dest, text.encode(), user, group, mode,
                        lambda: upload(io.StringIO(text), text.encode(), dest, user, group, mode))


def managed_file(name, dest, content, user, group, mode, converge):
    declare(files=[dest], paths=[posixpath.dirname(dest)])
    digest = content_digest(content)

    def matches(seen):
        return path_matches(seen, dest, "file", mode, user, group, digest)
    return checked(
        name=name, unchanged=f"{dest} is as declared", contained=True, matches=matches, converge=converge,
        inline=(dest, content, user, group, mode) if len(content) <= INLINE_LIMIT else None,
    )


def upload(source, content, dest, user, group, mode):
    """pyinfra's files.put, without asking again what the snapshot already told: that the folder
    exists, and that the content differs (then it uploads without comparing first; not in a
    --diff run, which shows the difference)."""
    seen = snapshot()
    folder_exists = seen is not None and seen["paths"].get(posixpath.dirname(dest), ("",))[0] == "directory"
    differs = seen is not None and seen["sha256"].get(dest) != sha256(content) and not state.config.DIFF
    yield from files.put._inner(src=source, dest=dest, user=user, group=group, mode=mode,
                                create_remote_dir=not folder_exists, force=differs)


def directory(name, path, user=None, group=None, mode=None, by_user=False):
    """files.directory. `by_user`: the folder is in a place `user` can write, so `user` makes it and
    sets its mode (root's chown or chmod would follow a link the user put in its place)."""
    def converge():
        if not by_user:
            yield from files.directory._inner(path=path, user=user, group=group, mode=mode)
            return
        found = host.get_fact(Directory, path=path)
        if not (found and found["user"] == user and found["group"] == group and found["mode"] == ensure_mode_int(mode)):
            quoted = shlex.quote(path)
            yield as_user_script(user, f"mkdir -p {quoted} && chmod {mode} {quoted}")
    declare(paths=[path])
    return checked(
        name=name, unchanged=f"{path} is as declared", contained=True,
        matches=lambda seen: path_matches(seen, path, "directory", mode, user, group),
        converge=converge,
    )


def user_file(name, src, dest, user, mode="644", **values):
    """A template rendered into a place `user` writes (its home): written by `user` itself (root
    would follow a link the user put on the way), inside one command, replaced whole."""
    content = render(src, values)
    write = f"mkdir -p {shlex.quote(posixpath.dirname(dest))}\n" + inline_script([(dest, content, None, None, mode)])

    def converge():
        if remote_sha256(dest) != sha256(content):
            yield as_user_script(user, write)
    declare(files=[dest], paths=[posixpath.dirname(dest)])
    return checked(
        name=name, unchanged=f"{dest} is as declared", contained=True,
        matches=lambda seen: path_matches(seen, dest, "file", mode, user, None, content_digest(content)),
        converge=converge,
    )


def packages(name, packages):
    """apt packages, without recommends. The package lists are refreshed only when something is
    missing, and then at most once per apt_cache_time (so never on a no-op apply)."""
    def converge():
        installed = host.get_fact(DebPackages)
        yield from apt.packages._inner(packages=packages, no_recommends=True, cache_time=host.data.apt_cache_time,
                                       update=any(package not in installed for package in packages))
    declare(packages=packages)
    return checked(
        name=name, unchanged="all installed",
        matches=lambda seen: all(seen["packages"].get(package) for package in packages),
        converge=converge,
    )


def user(name, user, home, shell):
    """server.user: the user with its home (made if missing, owned by it) and its login shell."""
    declare(users=[user], paths=[home])
    return checked(
        name=name, unchanged=f"{user} is as declared",
        matches=lambda seen: (seen["users"].get(user) == (home, shell)
                              and path_matches(seen, home, "directory", user=user, group=user)),
        converge=lambda: server.user._inner(user=user, home=home, shell=shell, create_home=True),
    )


def once(name, commands, marker, key):
    """Runs `commands` when `marker` does not hold `key`; the marker is written after they succeed,
    so a failed run is retried by the next apply."""
    recorded = (key + "\n").encode()

    def converge():
        if remote_sha256(marker) != sha256(recorded):
            yield from commands
            yield f"echo {shlex.quote(key)} > {shlex.quote(marker)}"
    declare(files=[marker])
    return checked(
        name=name, unchanged=f"done for {key[:12]}",
        matches=lambda seen: seen["sha256"].get(marker) == sha256(recorded),
        converge=converge,
    )


def until_copied(name, unchanged, source, copy, command):
    """Runs `command` unless `copy` holds what `source` holds; the command leaves that copy when it
    succeeds, so a failed run is retried by the next apply (a step keyed by a file on the target)."""
    def converge():
        done = remote_sha256(copy)
        if not done or done != remote_sha256(source):
            yield command

    def holds_the_copy(seen):
        copied = seen["sha256"].get(copy)
        return copied is not None and copied == seen["sha256"].get(source)
    declare(files=[source, copy])
    return checked(name=name, unchanged=unchanged, matches=holds_the_copy, converge=converge)


def unless_probed(name, unchanged, probe, holds, command, files=()):
    """Runs `command` unless `holds(lines, digests)`: `lines` what the shell command `probe` prints on
    the target, `digests` the SHA-256 of `files` by path; both come with the snapshot (no command of
    their own on a no-op apply), or are asked for themselves when it is off."""
    def converge():
        if not holds(host.get_fact(Probe, command=probe), {path: remote_sha256(path) for path in files}):
            yield command
    key = sha256(probe.encode())[:16]
    declare(files=files, probes=[(key, probe)])
    return checked(name=name, unchanged=unchanged, converge=converge,
                   matches=lambda seen: holds(seen["probes"].get(key, []), seen["sha256"]))


def only(name, folder, pattern, keep):
    """Files in `folder` matching `pattern` that are not in `keep` are removed."""
    def converge():
        for path in sorted(set(host.get_fact(FindFiles, path=folder, fname=pattern, quote_path=True) or []) - keep):
            yield from files.file._inner(path=path, present=False)
    declare(listings=[(folder, pattern)])
    return checked(
        name=name, unchanged=f"nothing else in {folder}",
        matches=lambda seen: set(seen["lists"].get(f"{folder}/{pattern}", [])) <= set(keep),
        converge=converge,
    )


def checkout(name, repo, ref, path, user, pin):
    """The git checkout at `path` is `repo` at the commit `pin` names (git.Pin), made and moved by `user`;
    what is in the way is kept (git.plan) and the operator told how. `pin` None leaves the checkout
    as it is (a start whose network did not answer for a branch); a git.RefError fails the step."""
    def converge():
        if isinstance(pin, git.RefError):
            yield failed(f"visomaster_ref: {pin}")
            return
        notes, commands = git.plan(host.get_fact(Checkout, path=path, user=user), repo, ref, pin.commit, path,
                                   time.strftime("%Y%m%d-%H%M%S"), user)
        for note in notes:
            logger.warning(f"[{host.name}] {note}")
        yield from commands

    def at_commit(seen):
        if pin is None or isinstance(pin, git.RefError):
            return pin is None
        found = seen["checkouts"].get(path, {})
        return found.get("origin") == repo and found.get("head") == pin.commit
    declare(checkouts=[(path, user)])
    return checked(name=name, unchanged=f"{path} is at {ref}", matches=at_commit, converge=converge)


def link(name, path, target, user):
    """`path` is a symbolic link to `target`, made by `user` (it is in the user's checkout); a
    directory in its place has its files moved into `target` first (none is overwritten or
    deleted; what cannot move stays, moved aside)."""
    def converge():
        quoted, to = shlex.quote(path), shlex.quote(target)
        if host.get_fact(Directory, path=path) and not host.get_fact(Link, path=path):
            aside = shlex.quote(f"{path}.moved-aside-{time.strftime('%Y%m%d-%H%M%S')}")
            logger.warning(f"[{host.name}] {path} is a directory: its files move into {target}")
            move = (f"mkdir -p {to} && find {quoted} -mindepth 1 -maxdepth 1 -exec mv -n -t {to} {{}} + ; "
                    f"rmdir {quoted} 2>/dev/null || mv {quoted} {aside}")
            yield as_user_script(user, move)
        if (host.get_fact(Link, path=path) or {}).get("link_target") != target:
            yield as_user(user, f"ln -sfn {to} {quoted}")
    declare(links=[path])
    return checked(
        name=name, unchanged=f"{path} -> {target}", contained=True,
        matches=lambda seen: seen["links"].get(path) == target,
        converge=converge,
    )


def authorized_keys(name, user, keys):
    """server.user_authorized_keys: the keys are in the user's authorized_keys (none twice); keys
    added by hand stay."""
    home = "/root" if user == "root" else f"/home/{user}"
    folder, path, keys = f"{home}/.ssh", f"{home}/.ssh/authorized_keys", tuple(dict.fromkeys(keys))
    declare(paths=[folder, path], lines=[(path, keys)])
    return checked(
        name=name, unchanged=f"{len(keys)} keys in {path}",
        matches=lambda seen: (path_matches(seen, folder, "directory", "700", user, user)
                              and path_matches(seen, path, "file", "600", user, user)
                              and all(seen["lines"].get(path, [False] * len(keys)))),
        converge=lambda: server.user_authorized_keys._inner(user=user, public_keys=list(keys), delete_keys=False),
    )
