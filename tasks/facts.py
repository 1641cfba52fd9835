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
    """supervisord's pid, asked through its own socket (never by process name), or None."""

    def command(self, config):
        return f"supervisorctl -c {config} pid 2>/dev/null || true"

    def process(self, output):
        text = "".join(output).strip()
        return int(text) if text.isdigit() else None
