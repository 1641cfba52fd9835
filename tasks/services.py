"""supervisor, the process manager (vast containers have no systemd): its main configuration,
one file per program, and starting or reloading it by phase.

Tasks declare their programs with `program(...)`; `apply()` runs last and touches supervisord
only for what changed in this run: the main configuration reloads everything, a program's file
updates only that program.
"""
from pyinfra import host
from pyinfra.api import deploy, operation
from pyinfra.facts.files import FindFiles
from pyinfra.operations import files, server

from tasks.facts import SupervisordPid

CONFIG = "/etc/supervisor/supervisord.conf"
PROGRAMS_DIR = "/etc/supervisor/conf.d"
SOCKET = "/run/supervisor.sock"
PIDFILE = "/run/supervisord.pid"
PROGRAM_PREFIX = "red-"  # Red's program files; other *.conf files in PROGRAMS_DIR are the user's

# supervisord answers on its socket, and is past a reload (which stops every program first)
WAIT_FOR_SUPERVISORD = (f"for _ in $(seq 300); do supervisorctl -c {CONFIG} pid 2>/dev/null | grep -q '^[0-9]' "
                        "&& exit 0; sleep 0.1; done; echo 'supervisord did not answer within 30 s' >&2; exit 1")
_changes = {}  # host name -> the operations whose change means supervisord must act


def _log_settings():
    return {"logs_dir": host.data.logs_dir, "log_max_bytes": host.data.log_max_bytes,
            "log_backups": host.data.log_backups}


@deploy("Supervisor")
def supervisor():
    files.directory(name="Supervisor programs directory", path=PROGRAMS_DIR, mode="755")
    main = files.template(
        name="Supervisor main configuration",
        src="files/supervisor/supervisord.conf.j2", dest=CONFIG, mode="644",
        socket=SOCKET, pidfile=PIDFILE, programs_dir=PROGRAMS_DIR, **_log_settings(),
    )
    _changes[host.name] = {"main": main, "programs": {}}


def program(name, command, user="root", directory="/", environment=None, priority=100,
            autostart=True, startsecs=1, restart_on=()):
    """Declare a supervisor program; its output goes to logs_dir/NAME.log. It is restarted when
    its own file changes, or when an operation in `restart_on` (a file it reads) changed."""
    environment = ",".join(f'{key}="{value}"' for key, value in (environment or {}).items())
    conf = files.template(
        name=f"Supervisor program {name}",
        src="files/supervisor/program.conf.j2", dest=f"{PROGRAMS_DIR}/{PROGRAM_PREFIX}{name}.conf",
        mode="644", program=name, command=command, run_as=user, directory=directory,
        environment=environment, priority=priority, autostart=str(autostart).lower(),
        startsecs=startsecs, **_log_settings(),
    )
    _changes[host.name]["programs"][name] = (conf, list(restart_on))
    return conf


@deploy("Supervisor programs")
def apply():
    changes = _changes[host.name]
    declared = {f"{PROGRAMS_DIR}/{PROGRAM_PREFIX}{name}.conf" for name in changes["programs"]}
    present = host.get_fact(FindFiles, path=PROGRAMS_DIR, fname=f"{PROGRAM_PREFIX}*.conf", quote_path=True) or []
    removed = [files.file(name=f"Remove the program file {path}", path=path, present=False)
               for path in sorted(set(present) - declared)]
    if host.data.phase == "build":
        return  # an image build starts nothing
    if host.get_fact(SupervisordPid, pidfile=PIDFILE) is None:
        server.shell(name="Start supervisord", commands=[f"supervisord -c {CONFIG} && {WAIT_FOR_SUPERVISORD}"])
        return
    converge_programs(
        name="Reload supervisord, or update and restart the programs whose files changed",
        main=changes["main"], programs=changes["programs"], removed=removed,
    )


def changed(op):
    """Whether an earlier operation changed something: its result once it ran, its plan in a dry run."""
    return op.did_change() if op.is_complete() else op.will_change


@operation()
def converge_programs(main, programs, removed):
    """Decided when it runs, from what changed earlier in this run: the main configuration reloads
    everything; a program's own file updates that program; a program whose `restart_on` changed is
    stopped before the update and started after it (so it never races a display being restarted)."""
    if changed(main):
        yield f"supervisorctl -c {CONFIG} reload && sleep 0.5 && {WAIT_FOR_SUPERVISORD}"
        return
    updated = any(changed(conf) for conf, _ in programs.values()) or any(changed(op) for op in removed)
    dependents = " ".join(name for name, (conf, triggers) in programs.items()
                          if not changed(conf) and any(changed(op) for op in triggers))
    if not updated and not dependents:
        host.noop("no supervisor configuration changed")
        return
    if dependents:
        yield f"supervisorctl -c {CONFIG} stop {dependents}"
    if updated:
        yield f"supervisorctl -c {CONFIG} update"
    if dependents:
        yield f"supervisorctl -c {CONFIG} start {dependents}"
