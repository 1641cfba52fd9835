"""Facts Red asks its targets for, beyond pyinfra's own."""
from pyinfra.api import FactBase


class InstanceEnvironment(FactBase):
    """The container's own environment (its main process's), for the named variables only:
    vast sets VNC_PW, WORKSPACE... there, not in an SSH session's environment."""

    def command(self, names):
        pattern = "|".join(names)
        return f"tr '\\0' '\\n' < /proc/1/environ 2>/dev/null | grep -E '^({pattern})=' || true"

    def process(self, output):
        return dict(line.split("=", 1) for line in output if "=" in line)


class SupervisordPid(FactBase):
    """supervisord's pid from its own pidfile, when that process is supervisord (never by process
    name, and also while it is busy reloading), or None."""

    def command(self, pidfile):
        return (f"pid=$(cat {pidfile} 2>/dev/null) && grep -qa supervisord /proc/$pid/cmdline 2>/dev/null "
                "&& echo $pid || true")

    def process(self, output):
        text = "".join(output).strip()
        return int(text) if text.isdigit() else None
