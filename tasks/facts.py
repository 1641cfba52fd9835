"""Facts Red asks its targets for, beyond pyinfra's own."""
import json
import re
import shlex

from pyinfra.api import FactBase


LOCK = "/run/red.lock"  # one run at a time on a target: onstart.sh and a provision alike


# Every TCP port something listens on, one line each: PORT PID COMMAND OWNER. OWNER is "red" when the
# process descends from the supervisord started with the configuration argv[1] (Red's), "-" for any
# other, "?" when no process shows the socket (PID and COMMAND are "-" then): root without
# CAP_SYS_PTRACE (a Docker container) cannot read another user's /proc/PID/fd, and a process of
# another PID namespace is not listed. Only /proc/PID/fd, stat and cmdline are read; environments are not.
LISTENERS = r"""
import glob, os, sys
ports = {}
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        rows = open(table).read().splitlines()[1:]
    except OSError:
        continue
    for row in rows:
        fields = row.split()
        if fields[3] == "0A":
            ports[fields[9]] = int(fields[1].rsplit(":", 1)[1], 16)
held = {}
for fd in glob.glob("/proc/[0-9]*/fd/*"):
    try:
        link = os.readlink(fd)
    except OSError:
        continue
    if link.startswith("socket:[") and link[8:-1] in ports:
        held.setdefault(ports[link[8:-1]], fd.split("/")[2])
def owner(pid):
    while pid != "0":  # PID 1 too: in a container, supervisord is the main process
        try:
            argv = open(f"/proc/{pid}/cmdline").read().split("\0")
            pid = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1]
        except (OSError, IndexError):
            return "-"
        if any(os.path.basename(word) == "supervisord" for word in argv[:2]) and sys.argv[1] in argv:
            return "red"
    return "-"
def command(pid):
    try:
        return open(f"/proc/{pid}/comm").read().split()[0]
    except (OSError, IndexError):
        return "?"
for port in sorted(set(ports.values())):
    pid = held.get(port)
    print(port, pid or "-", command(pid) if pid else "-", owner(pid) if pid else "?")
"""


class FirstLook(FactBase):
    """The first command of a run: the container's own environment (its main process's), for the
    named variables only (vast sets VNC_PW, WORKSPACE... there, not in an SSH session's), the
    distribution (/etc/os-release), and the output of the snapshot script the last run left (when
    given and present), so that a run that has nothing to do needs no other command. With `lock`,
    it first takes the target's run lock (see run_lock) and holds it until the run ends.
    With `supervisor_config`, every TCP port something listens on, and whether the supervisord of that
    configuration runs it (LISTENERS). Returns {"environment": {...}, "os_release": {...}, "listeners":
    [{"port", "pid", "command", "owner"}...], "snapshot": parsed or None}."""

    def command(self, names, script=None, lock=False, controller_pid=None, supervisor_config=None):
        pattern = "|".join(names)
        # one variable per line: backslashes and newlines inside a value (PUBLIC_KEY's lines) escaped
        look = (f"sed -z 's/\\\\/\\\\\\\\/g; s/\\n/\\\\n/g' /proc/1/environ 2>/dev/null | tr '\\0' '\\n' "
                f"| grep -E '^({pattern})=' || true; echo @os-release; cat /etc/os-release 2>/dev/null")
        if supervisor_config:
            look += (f"; echo @listeners; python3 -I -c {shlex.quote(LISTENERS)} {shlex.quote(supervisor_config)} "
                     "2>/dev/null")
        if script:
            look += f"; if [ -x {script} ]; then echo @snapshot; {script}; fi"
        return (run_lock(controller_pid) + "; " if lock else "") + in_one_write(look)

    def process(self, output):
        sections = {"environment": [], "@os-release": [], "@listeners": [], "@snapshot": None}
        current = "environment"
        for line in output:
            if line in ("@os-release", "@listeners", "@snapshot"):
                current = line
                sections[current] = []
            else:
                sections[current].append(line)
        return {
            "environment": {name: unescape(value) for name, _, value in
                            (line.partition("=") for line in sections["environment"] if "=" in line)},
            "os_release": {key: value.strip('"') for key, _, value in
                           (line.partition("=") for line in sections["@os-release"]) if key},
            "listeners": [dict(zip(("port", "pid", "command", "owner"), line.split()))
                          for line in sections["@listeners"] if len(line.split()) == 4],
            "snapshot": parse_snapshot(sections["@snapshot"]) if sections["@snapshot"] else None,
        }


def unescape(value):
    r"""A value as FirstLook's command escaped it: \n is a newline, \\ a backslash."""
    return re.sub(r"\\(.)", lambda match: "\n" if match.group(1) == "n" else match.group(1), value)


def run_lock(controller_pid=None):
    """Takes LOCK (waiting while onstart.sh or another run holds it) and leaves a process holding it
    until the run's connection ends: the sshd process that serves it, or the controller's own process
    (`controller_pid`, for @local). Nothing to release by hand; a dead controller releases it too.
    The holder is a `tail --pid` that shares the lock's open file: it looks twice a second and forks
    nothing, and finding sshd forks nothing either (a fleet's runs hold their locks on one target)."""
    find_sshd = ('p=$$; while [ "$p" -gt 1 ]; do read -r comm < /proc/$p/comm || break; '
                 'case "$comm" in sshd*) watch=$p; break;; esac; '
                 'read -r stat < /proc/$p/stat || break; stat=${stat##*) }; set -- $stat; p=${2:-0}; done')
    watch = f"watch={int(controller_pid)}" if controller_pid else f"watch=$PPID; {find_sshd}"
    return (f"{watch}; exec 9>>{LOCK} && flock 9 && "
            '{ tail -s 0.5 --pid="$watch" -f /dev/null </dev/null >/dev/null 2>&1 & }')


# supervisord's programs and their states, asked over its socket (argv[1]) as `supervisorctl status` asks
# (XML-RPC; without xmlrpc.client, whose imports take longer than the question), in the lines
# `@supervisord PID` then `NAME STATE` (NAME is GROUP:NAME when they differ); nothing when it does not
# answer. 20 ms where supervisorctl takes 140, which every snapshot pays (python3 is a base package).
SUPERVISOR_STATES = r"""
import socket, sys
import xml.etree.ElementTree as tree
def call(method):
    body = f"<?xml version='1.0'?><methodCall><methodName>supervisor.{method}</methodName></methodCall>".encode()
    with socket.socket(socket.AF_UNIX) as server:
        server.connect(sys.argv[1])
        server.sendall(b"POST /RPC2 HTTP/1.0\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n%s"
                       % (len(body), body))
        answer = b"".join(iter(lambda: server.recv(65536), b""))
    return tree.fromstring(answer.partition(b"\r\n\r\n")[2]).find("params/param/value")
try:
    pid, programs = call("getPID"), call("getAllProcessInfo")
except OSError:
    sys.exit()
print("@supervisord", pid.findtext("int") or pid.findtext("i4"))
for program in programs.iterfind("array/data/value/struct"):
    fields = {member.findtext("name"): "".join(member.find("value").itertext()) for member in program}
    name, group = fields["name"], fields["group"]
    print(name if group == name else f"{group}:{name}", fields["statename"])
"""


def supervisor_states(socket):
    """The shell command that prints SUPERVISOR_STATES's lines for the supervisord on `socket`."""
    return f"python3 -I -c {shlex.quote(SUPERVISOR_STATES)} {shlex.quote(socket)} 2>/dev/null"


def listening(socket):
    """A shell test: something accepts connections on the unix socket `socket`. A tenth of
    supervisorctl's time, which counts at a container's start (python3 is a base package)."""
    return ("python3 -I -c 'import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' "
            f"{shlex.quote(socket)} 2>/dev/null")


class Snapshot(FactBase):
    """Everything the deploy manages, in one remote command (see snapshot_command)."""

    def command(self, command):
        return in_one_write(command)

    def process(self, output):
        return parse_snapshot(output)


def in_one_write(command):
    """`command` with its output held until it ends and then written at once: its steps' outputs
    (about twenty) would each leave as SSH packets of their own, and a controller reading many hosts'
    snapshots spent about 2 ms a host on their packets. dd (coreutils) gathers blocks of up to a MiB."""
    return f"{{ {command}; }} | dd obs=1M status=none; true"


class Probe(FactBase):
    """A task's own probe (see snapshot_command), asked by itself: its output lines."""

    @staticmethod
    def default():
        return []

    def command(self, command):
        return command

    def process(self, output):
        return list(output)


class Checkout(FactBase):
    """What is at a checkout's path (see checkout_probe), as parse_checkout reads it."""

    def command(self, path, user):
        return checkout_probe(path, user)

    def process(self, output):
        return parse_checkout(output)


def as_user(user, command):
    """`command` run as `user`, with that user's home (root never runs what the user can write: a
    checkout's config and hooks, the app's environment, a requirements file)."""
    return f"runuser -u {shlex.quote(user)} -- env HOME={shlex.quote('/home/' + user)} {command}"


def as_user_script(user, script):
    """A shell script (several commands, redirections) run as `user` (see as_user)."""
    return as_user(user, f"sh -c {shlex.quote(script)}")


def checkout_probe(path, user, detail=True):
    """Prints `state missing|empty|other|git`, and for a git checkout its origin and HEAD; with
    `detail`, whether tracked files are modified (`dirty 0|1`: git status, which may run the
    checkout's filters) and whether any ref holds HEAD (`held 0|1`: a HEAD that no branch or tag
    holds would be lost by moving away from it). git runs as `user`, with the checkout's fsmonitor
    and hooks switched off; the snapshot asks no detail, so it runs nothing the checkout configures."""
    quoted = shlex.quote(path)
    git = as_user(user, f"git -c core.fsmonitor=false -c core.hooksPath=/dev/null -C {quoted}")
    return (f"if [ ! -e {quoted} ]; then echo state missing; "
            f"elif [ -d {quoted} ] && [ -z \"$(ls -A {quoted})\" ]; then echo state empty; "
            f"elif [ ! -d {quoted}/.git ]; then echo state other; "
            f"else echo state git; echo origin $({git} config remote.origin.url); "
            f"echo head $({git} rev-parse HEAD 2>/dev/null); "
            + (f"echo dirty $({git} status --porcelain --untracked-files=no 2>/dev/null | head -c1 | wc -c); "
               f"echo held $({git} for-each-ref --count=1 --contains HEAD 2>/dev/null | wc -l); " if detail else "")
            + "fi")


def parse_checkout(lines):
    """{"state": ..., "origin": ..., "head": ..., "dirty": bool, "held": bool} (missing keys: not a checkout)."""
    found = {}
    for line in lines:
        key, _, value = line.partition(" ")
        found[key] = value.strip()
    for flag in ("dirty", "held"):
        if flag in found:
            found[flag] = found[flag] not in ("", "0")
    return found


def snapshot_command(paths, files, packages, users, listings, supervisor, checkouts=(), links=(), held_lines=(),
                     probes=()):
    """One shell command (POSIX sh and coreutils only, so it also works on a bare image before Red
    installed anything) that reports each path's type, mode and owner, each file's SHA-256, the
    state of the named packages, the named users, the files in the listed folders that match a
    pattern, each checkout's state, each link's target, which wanted lines each file holds, what each
    task's own probe prints (`probes`: (name, command), lines that do not begin with @), and
    supervisord's pid and program states."""
    steps = ["echo @stat", f"stat --printf '%n\\t%F\\t%a\\t%U\\t%G\\n' -- {_quoted(paths)} 2>/dev/null",
             # regular files only: root hashes no link a user may have put in a file's place
             "echo @sha256", f"find -P {_quoted(files)} -maxdepth 0 -type f -exec sha256sum -- {{}} + 2>/dev/null"
             if files else ":",
             "echo @dpkg",
             f"dpkg-query -W -f '${{Package}}\\t${{db:Status-Abbrev}}\\n' {_quoted(packages)} 2>/dev/null"
             if packages else ":",
             "echo @passwd", f"getent passwd {_quoted(users)}" if users else ":"]
    for folder, pattern in listings:
        steps += [f"printf '@list %s\\n' {shlex.quote(folder + '/' + pattern)}",
                  f"find {shlex.quote(folder)} -maxdepth 1 -name {shlex.quote(pattern)} 2>/dev/null"]
    for path, user in checkouts:
        steps += [f"printf '@checkout %s\\n' {shlex.quote(path)}", checkout_probe(path, user, detail=False)]
    for path, wanted in held_lines:  # 1 or 0 for each wanted line, in order
        quoted = shlex.quote(path)
        steps += [f"printf '@lines %s\\n' {quoted}"] + [
            f"grep -qxF -e {shlex.quote(line)} {quoted} 2>/dev/null && echo 1 || echo 0" for line in wanted]
    for path in links:
        steps += [f"printf '@link %s\\n' {shlex.quote(path)}", f"readlink {shlex.quote(path)}"]
    for name, command in probes:
        steps += [f"printf '@probe %s\\n' {shlex.quote(name)}", f"{{ {command}; }}"]
    if supervisor:
        steps.append(supervisor_states(supervisor))
    return "; ".join(steps) + "; true"


def program_states(lines):
    """program name -> state, from `supervisorctl status` lines."""
    return dict(line.split()[:2] for line in lines if len(line.split()) >= 2)


def _quoted(words):
    return " ".join(shlex.quote(word) for word in sorted(words))


def parse_snapshot(lines):
    """The snapshot's output as {"paths": {path: (type, mode, user, group)}, "sha256": {path: hex},
    "packages": {name: installed?}, "users": {name: (home, shell)}, "lists": {folder/pattern: [paths]},
    "supervisord": pid or None, "programs": {name: state}, "checkouts": {path: parse_checkout(...)},
    "links": {path: target or None}, "lines": {path: [held?]}, "probes": {name: [line]},
    "request": the digest of the command a saved script runs}."""
    found = {"paths": {}, "sha256": {}, "packages": {}, "users": {}, "lists": {}, "supervisord": None,
             "programs": {}, "request": None, "checkouts": {}, "links": {}, "lines": {}, "probes": {}}
    section = None
    for line in lines:
        if line.startswith("@"):
            section, _, argument = line[1:].partition(" ")
            if section == "list":
                found["lists"][argument] = []
            elif section == "checkout":
                found["checkouts"][argument] = []
            elif section == "link":
                found["links"][argument] = None
            elif section == "lines":
                found["lines"][argument] = []
            elif section == "probe":
                found["probes"][argument] = []
            elif section == "supervisord":
                found["supervisord"] = int(argument)
            elif section == "request":  # which snapshot_command a saved script runs
                found["request"] = argument
            continue
        if section == "stat" and line.count("\t") == 4:
            path, kind, mode, user, group = line.split("\t")
            kind = {"regular file": "file", "regular empty file": "file"}.get(kind, kind)
            found["paths"][path] = (kind, int(mode), user, group)
        elif section == "sha256" and len(line) > 66:
            found["sha256"][line[66:]] = line[:64]
        elif section == "dpkg" and "\t" in line:
            name, status = line.split("\t", 1)
            found["packages"][name.split(":")[0]] = status.startswith("ii")
        elif section == "passwd" and line.count(":") >= 6:
            name, _, _, _, _, home, shell = line.split(":")[:7]
            found["users"][name] = (home, shell)
        elif section == "list":
            found["lists"][argument].append(line)
        elif section == "checkout":
            found["checkouts"][argument].append(line)
        elif section == "link":
            found["links"][argument] = line
        elif section == "lines":
            found["lines"][argument].append(line == "1")
        elif section == "probe":
            found["probes"][argument].append(line)
        elif section == "supervisord":
            found["programs"].update(program_states([line]))
    found["checkouts"] = {path: parse_checkout(lines) for path, lines in found["checkouts"].items()}
    return found


class SupervisorStates(FactBase):
    """(supervisord's pid, {program: state}) as supervisord answers on its socket (SUPERVISOR_STATES);
    (None, {}) when nothing answers. Asked, never judged by a pidfile: a container's /run outlives a
    restart while PIDs repeat."""

    def command(self, socket):
        return supervisor_states(socket) + " || true"

    @staticmethod
    def default():
        return None, {}

    def process(self, output):
        found = parse_snapshot(output)
        return found["supervisord"], found["programs"]


class DoctorReport(FactBase):
    """red-doctor's JSON report (files/diagnostics/red-doctor); None when it does not answer (Red's
    deploy has not run there). It exits 1 when a check fails: that is its answer, not the fact's error."""

    def command(self, doctor):
        return f"{shlex.quote(doctor)} --json 2>/dev/null || true"

    def process(self, output):
        try:
            return json.loads("\n".join(output))
        except ValueError:
            return None


# Whose the notebook at argv[1] is: "missing"; "ours DIGEST" when its cells are still those Red wrote
# (their digest, kept in its metadata, matches: outputs and the rest may differ); "theirs" otherwise.
NOTEBOOK_ORIGIN = r"""
import hashlib, json, sys
try:
    with open(sys.argv[1]) as handle:
        notebook = json.load(handle)
except FileNotFoundError:
    sys.exit(print("missing"))
except (OSError, ValueError):
    sys.exit(print("theirs"))
cells = [[cell.get("cell_type"), "".join(cell.get("source", "")) if isinstance(cell.get("source"), list)
          else cell.get("source", "")] for cell in notebook.get("cells", []) if isinstance(cell, dict)]
recorded = (notebook.get("metadata") or {}).get("red", {}).get("cells")
print(f"ours {recorded}" if recorded == hashlib.sha256(json.dumps(cells).encode()).hexdigest() else "theirs")
"""


class NotebookOrigin(FactBase):
    """NOTEBOOK_ORIGIN for the notebook at `path`, read as `user` (it is in that user's folder)."""

    def command(self, path, user):
        return as_user(user, f"python3 -c {shlex.quote(NOTEBOOK_ORIGIN)} {shlex.quote(path)}")

    def process(self, output):
        return output[0].strip() if output else "missing"
