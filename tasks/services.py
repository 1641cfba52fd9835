"""supervisor, the process manager (vast containers have no systemd): its main configuration,
one file per program, and starting or reloading it by phase.

Tasks declare their programs with `program(...)`; `apply()` runs last and touches supervisord
only for what changed in this run: the main configuration reloads everything, a program's file
updates only that program.
"""
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import FindFiles
from pyinfra.operations import files, server

from tasks.facts import SupervisordPid

CONFIG = "/etc/supervisor/supervisord.conf"
PROGRAMS_DIR = "/etc/supervisor/conf.d"
SOCKET = "/run/supervisor.sock"
PROGRAM_PREFIX = "red-"  # Red's program files; other *.conf files in PROGRAMS_DIR are the user's

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
        socket=SOCKET, programs_dir=PROGRAMS_DIR, **_log_settings(),
    )
    _changes[host.name] = {"main": main, "programs": {}}


def program(name, command, user="root", directory="/", environment=None, priority=100,
            autostart=True, startsecs=1):
    """Declare a supervisor program; its output goes to logs_dir/NAME.log."""
    environment = ",".join(f'{key}="{value}"' for key, value in (environment or {}).items())
    _changes[host.name]["programs"][name] = files.template(
        name=f"Supervisor program {name}",
        src="files/supervisor/program.conf.j2", dest=f"{PROGRAMS_DIR}/{PROGRAM_PREFIX}{name}.conf",
        mode="644", program=name, command=command, user=user, directory=directory,
        environment=environment, priority=priority, autostart=str(autostart).lower(),
        startsecs=startsecs, **_log_settings(),
    )


@deploy("Supervisor programs")
def apply():
    changes = _changes[host.name]
    declared = {f"{PROGRAMS_DIR}/{PROGRAM_PREFIX}{name}.conf" for name in changes["programs"]}
    present = host.get_fact(FindFiles, path=PROGRAMS_DIR, fname=f"{PROGRAM_PREFIX}*.conf", quote_path=True) or []
    removed = [files.file(name=f"Remove the program file {path}", path=path, present=False)
               for path in sorted(set(present) - declared)]
    if host.data.phase == "build":
        return  # an image build starts nothing
    if host.get_fact(SupervisordPid, config=CONFIG) is None:
        server.shell(
            name="Start supervisord",
            commands=[f"supervisord -c {CONFIG} && for _ in $(seq 100); do "
                      f"supervisorctl -c {CONFIG} pid >/dev/null 2>&1 && exit 0; sleep 0.1; done; exit 1"],
        )
        return
    main = changes["main"]
    programs = [*changes["programs"].values(), *removed]
    server.shell(name="Reload supervisord (its main configuration changed)",
                 commands=[f"supervisorctl -c {CONFIG} reload"], _if=main.did_change)
    server.shell(name="Update the changed supervisor programs",
                 commands=[f"supervisorctl -c {CONFIG} update"],
                 _if=lambda: not main.did_change() and any(op.did_change() for op in programs))
