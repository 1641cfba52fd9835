"""supervisor, the process manager (vast containers have no systemd): its main configuration,
one file per program, and starting or reloading it by phase.

Tasks declare their programs with `program(...)`; `apply()` runs last and touches supervisord
only for what changed in this run: the main configuration reloads everything, a program's file
updates only that program.
"""
import posixpath
import shlex
from dataclasses import dataclass

from pyinfra import host, logger
from pyinfra.api import deploy, operation

from tasks import managed
from tasks.facts import SupervisorStates

CONFIG = "/etc/supervisor/supervisord.conf"
PROGRAMS_DIR = "/etc/supervisor/conf.d"
SOCKET = "/run/supervisor.sock"
PIDFILE = "/run/supervisord.pid"
STATES = "/var/lib/red/status/programs.json"  # every program's state, for the portal page (red-states)


@dataclass(frozen=True)
class Listener:
    """A supervisor event listener of Red's: files/supervisor/red-NAME, run with `args`."""
    name: str
    args: tuple
    events: str
    priority: int
    about: str

    @property
    def script(self):
        return f"/usr/local/bin/red-{self.name}"

    @property
    def command(self):
        return supervisor_value(shlex.join([self.script, *self.args]))


LISTENERS = [
    Listener("nudge", (SOCKET,), "PROCESS_STATE_STARTING,PROCESS_STATE_STOPPING,SUPERVISOR_STATE_CHANGE_STOPPING", 1,
             "starts and stops in a few hundredths of a second what supervisord's one-second poll would otherwise "
             "hold up"),
    Listener("states", (CONFIG, STATES), "PROCESS_STATE", 2, "every program's state, for the portal page"),
]
PROGRAM_PREFIX = "red-"  # Red's program files; other *.conf files in PROGRAMS_DIR are the user's
NOT_RUNNING = ("STOPPED", "EXITED", "FATAL")  # states in which supervisord will not start a program by itself

# supervisord answers on its socket, and is past a reload (which stops every program first)
WAIT_FOR_SUPERVISORD = (f"for _ in $(seq 300); do supervisorctl -c {CONFIG} pid 2>/dev/null | grep -q '^[0-9]' "
                        "&& exit 0; sleep 0.1; done; echo 'supervisord did not answer within 30 s' >&2; exit 1")
_changes = {}  # host name -> the operations whose change means supervisord must act


def _log_settings():
    return {"logs_dir": supervisor_value(host.data.logs_dir), "log_max_bytes": host.data.log_max_bytes,
            "log_backups": host.data.log_backups}


@deploy("Supervisor")
def supervisor():
    managed.directory(name="Supervisor programs directory", path=PROGRAMS_DIR, mode="755")
    managed.directory(name="Programs' states folder", path=posixpath.dirname(STATES), user="root", group="root",
                      mode="755")
    listeners = {listener.name: managed.put(name=f"Event listener {listener.name}",
                                            src=f"files/supervisor/red-{listener.name}", dest=listener.script,
                                            mode="755")
                 for listener in LISTENERS}
    main = managed.template(
        name="Supervisor main configuration",
        src="files/supervisor/supervisord.conf.j2", dest=CONFIG, mode="644",
        socket=SOCKET, pidfile=PIDFILE, programs_dir=PROGRAMS_DIR, listeners=LISTENERS, **_log_settings(),
    )
    _changes[host.name] = {"main": main, "listeners": listeners, "programs": {}, "said": set()}


@dataclass
class Program:
    conf: object  # the operation that writes its file
    restart_on: list  # operations whose change restarts it
    autostart: bool
    oneshot: bool  # runs to its end at each start; a finished one is not started again
    reload: tuple = ()  # (operation, command): when the operation changed, the command reloads the running program


def supervisor_value(text, quoted=False):
    """`text` as supervisor reads it back: `%` doubled (supervisor expands %(name)s everywhere); a
    newline would start another setting, and a double quote end a `quoted` (environment) value:
    refused."""
    text = str(text)
    if "\n" in text or (quoted and '"' in text):
        raise ValueError(f"not a value supervisor can hold: {text!r}")
    return text.replace("%", "%%")


def program_values(name, argv, user="root", directory="/", environment=None):
    """The program file's values, each quoted for supervisor: the command word by word as a shell
    would split it (supervisor splits it with shlex), environment values in double quotes."""
    return {"program": name, "command": supervisor_value(shlex.join(argv)), "run_as": supervisor_value(user),
            "directory": supervisor_value(directory),
            "environment": ",".join(f'{key}="{supervisor_value(value, quoted=True)}"'
                                    for key, value in (environment or {}).items())}


def program(name, argv, user="root", directory="/", environment=None, priority=100,
            autostart=True, startsecs=1, restart_on=(), oneshot=False, reload=()):
    """Declare a supervisor program running `argv` (a list of words); its output goes to
    logs_dir/NAME.log. It is restarted when its own file changes, or when an operation in
    `restart_on` (a file it reads) changed; `reload`, (operation, command): a running program that
    is not restarted runs the command when the operation changed (a configuration it reloads)."""
    conf = managed.template(
        name=f"Supervisor program {name}",
        src="files/supervisor/program.conf.j2", dest=f"{PROGRAMS_DIR}/{PROGRAM_PREFIX}{name}.conf",
        mode="644", **program_values(name, argv, user, directory, environment), priority=priority,
        autostart=str(autostart).lower(),
        autorestart=str(not oneshot).lower(),
        startsecs=startsecs, **_log_settings(),
    )
    _changes[host.name]["programs"][name] = Program(conf, list(restart_on), autostart, oneshot, tuple(reload))
    return conf


def declared_programs():
    """The programs declared so far: {name: {"oneshot", "autostart"}} (red-doctor knows what state to expect)."""
    return {name: {"oneshot": program.oneshot, "autostart": program.autostart}
            for name, program in _changes[host.name]["programs"].items()}


def held_by_another(what, *ports):
    """Whether a process Red's supervisord did not start listens on one of `ports` (vast's own sshd
    and Jupyter, in its SSH and Jupyter launch modes): Red then leaves `what` to that process rather
    than fight it for the port, and says so once. A socket whose process cannot be seen (facts.LISTENERS:
    owner "?", e.g. Red's own programs of other users inside a container) is never taken for another's."""
    for listener in host.data.get("listeners") or ():
        if int(listener["port"]) in ports and listener["owner"] == "-":
            holder = f"{listener['command']} (pid {listener['pid']})"
            said = f"port {listener['port']} is held by {holder}, which Red did not start: Red leaves {what} to it"
            if said not in _changes[host.name]["said"]:
                _changes[host.name]["said"].add(said)
                logger.warning(f"[{host.name}] {said}")
            return True
    return False


@deploy("Supervisor programs")
def apply():
    changes = _changes[host.name]
    removed = managed.only(
        name="Remove program files Red no longer declares", folder=PROGRAMS_DIR, pattern=f"{PROGRAM_PREFIX}*.conf",
        keep={f"{PROGRAMS_DIR}/{PROGRAM_PREFIX}{name}.conf" for name in changes["programs"]},
    )
    if host.data.phase == "build":
        return  # an image build starts nothing
    managed.declare(supervisor=SOCKET)
    converge_programs(
        name="Start supervisord, or reload it, or update and restart the programs that changed or stopped",
        main=changes["main"], listeners=changes["listeners"], programs=changes["programs"], removed=removed,
    )


def changed(op):
    """Whether an earlier operation changed something: its result once it ran, its plan in a dry run."""
    return op.did_change() if op.is_complete() else op.will_change


def failed(op):
    return op.is_complete() and op.did_error()


def supervisord_state():
    """supervisord's pid (None when it is not running) and its programs' states."""
    seen = managed.snapshot()
    if seen is not None:
        return seen["supervisord"], seen["programs"]
    return host.get_fact(SupervisorStates, socket=SOCKET)


@operation()
def converge_programs(main, listeners, programs, removed):
    """Decided when it runs, from what changed earlier in this run: supervisord is started if it is
    not running; the main configuration reloads everything; a program's own file updates that
    program; a program whose `restart_on` changed is stopped before the update and started after it
    (so it never races a display being restarted); a program found stopped is started; a running
    program whose `reload` operation changed is reloaded; a changed event listener script restarts
    the listener."""
    pid, states = supervisord_state()
    if pid is None and host.data.phase == "start":
        host.noop("supervisord is not running: onstart.sh starts it (in the foreground as a container's main process)")
        return
    if pid is None:
        yield f"supervisord -c {CONFIG} && {WAIT_FOR_SUPERVISORD}"
        return
    if changed(main):
        yield f"supervisorctl -c {CONFIG} reload && sleep 0.5 && {WAIT_FOR_SUPERVISORD}"
        return
    updated = any(changed(program.conf) for program in programs.values()) or changed(removed)
    # a program one of whose inputs failed keeps running as it is (the app on its last good packages)
    dependents = [name for name, program in programs.items()
                  if not changed(program.conf) and any(changed(op) for op in program.restart_on)
                  and not any(failed(op) for op in program.restart_on)]
    dependents += [name for name, script in listeners.items() if changed(script)]
    stopped = [name for name, program in programs.items()
               if program.autostart and not program.oneshot and not changed(program.conf) and name not in dependents
               and states.get(name) in NOT_RUNNING]
    reloads = [program.reload[1] for name, program in programs.items()
               if program.reload and changed(program.reload[0]) and not changed(program.conf)
               and name not in dependents and states.get(name) == "RUNNING"]
    if not updated and not dependents and not stopped and not reloads:
        host.noop("supervisord runs, as configured")
        return
    steps = list(reloads)
    if dependents:
        steps.append(f"supervisorctl -c {CONFIG} stop {' '.join(dependents)}")
    if updated:
        steps.append(f"supervisorctl -c {CONFIG} update")
    if dependents or stopped:
        steps.append(f"supervisorctl -c {CONFIG} start {' '.join(dependents + stopped)}")
    yield " && ".join(steps)  # one round trip; the first step that fails stops the rest, as separate commands do
