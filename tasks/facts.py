"""Facts Red asks its targets for, beyond pyinfra's own."""
import shlex

from pyinfra.api import FactBase


class FirstLook(FactBase):
    """The first command of a run: the container's own environment (its main process's), for the
    named variables only (vast sets VNC_PW, WORKSPACE... there, not in an SSH session's), and the
    output of the snapshot script the last run left (when given and present), so that a run that
    has nothing to do needs no other command. Returns (environment, snapshot or None)."""

    def command(self, names, script=None):
        pattern = "|".join(names)
        look = f"tr '\\0' '\\n' < /proc/1/environ 2>/dev/null | grep -E '^({pattern})=' || true"
        if script:
            look += f"; if [ -x {script} ]; then echo @snapshot; {script}; fi; true"
        return look

    def process(self, output):
        environment, snapshot = [], None
        for line in output:
            if line == "@snapshot":
                snapshot = []
            elif snapshot is not None:
                snapshot.append(line)
            elif "=" in line:
                environment.append(line)
        return dict(line.split("=", 1) for line in environment), (parse_snapshot(snapshot) if snapshot else None)


class SupervisordPid(FactBase):
    """supervisord's pid from its own pidfile, when that process is supervisord (never by process
    name, and also while it is busy reloading), or None."""

    def command(self, pidfile):
        return (f"pid=$(cat {pidfile} 2>/dev/null) && grep -qa supervisord /proc/$pid/cmdline 2>/dev/null "
                "&& echo $pid || true")

    def process(self, output):
        text = "".join(output).strip()
        return int(text) if text.isdigit() else None


class Snapshot(FactBase):
    """Everything the deploy manages, in one remote command (see snapshot_command)."""

    def command(self, command):
        return command

    def process(self, output):
        return parse_snapshot(output)


def snapshot_command(paths, files, packages, users, listings, supervisor):
    """One shell command (POSIX sh and coreutils only, so it also works on a bare image before Red
    installed anything) that reports each path's type, mode and owner, each file's SHA-256, the
    state of the named packages, the named users, the files in the listed folders that match a
    pattern, and supervisord's pid and program states."""
    lines = ["echo @stat", f"stat --printf '%n\\t%F\\t%a\\t%U\\t%G\\n' -- {_quoted(paths)} 2>/dev/null",
             "echo @sha256", f"sha256sum -- {_quoted(files)} 2>/dev/null" if files else ":",
             "echo @dpkg",
             f"dpkg-query -W -f '${{Package}}\\t${{db:Status-Abbrev}}\\n' {_quoted(packages)} 2>/dev/null"
             if packages else ":",
             "echo @passwd", f"getent passwd {_quoted(users)}" if users else ":"]
    for folder, pattern in listings:
        lines += [f"printf '@list %s\\n' {shlex.quote(folder + '/' + pattern)}",
                  f"find {shlex.quote(folder)} -maxdepth 1 -name {shlex.quote(pattern)} 2>/dev/null"]
    if supervisor:
        config, pidfile = supervisor
        lines += [f"pid=$(cat {shlex.quote(pidfile)} 2>/dev/null) && grep -qa supervisord /proc/$pid/cmdline "
                  f"2>/dev/null && echo @supervisord $pid && supervisorctl -c {shlex.quote(config)} status"]
    return "; ".join(lines) + "; true"


def _quoted(words):
    return " ".join(shlex.quote(word) for word in sorted(words))


def parse_snapshot(lines):
    """The snapshot's output as {"paths": {path: (type, mode, user, group)}, "sha256": {path: hex},
    "packages": {name: installed?}, "users": {name: (home, shell)}, "lists": {folder/pattern: [paths]},
    "supervisord": pid or None, "programs": {name: state}}."""
    found = {"paths": {}, "sha256": {}, "packages": {}, "users": {}, "lists": {}, "supervisord": None,
             "programs": {}, "request": None}
    section = None
    for line in lines:
        if line.startswith("@"):
            section, _, argument = line[1:].partition(" ")
            if section == "list":
                found["lists"][argument] = []
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
        elif section == "supervisord" and line.split():
            name, state = line.split()[:2]
            found["programs"][name] = state
    return found


class SupervisorStatus(FactBase):
    """program name -> state, from `supervisorctl status`."""

    def command(self, config):
        return f"supervisorctl -c {config} status || true"

    def process(self, output):
        return dict(line.split()[:2] for line in output if len(line.split()) >= 2)
