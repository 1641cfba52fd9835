"""pyinfra's CLI, counting what it sends to each SSH host: `python tests/pyinfra_counted.py ARGS`.

At exit it prints one line to stderr: `remote commands: {"HOST": N, ...}` (commands and file
transfers, each a channel on the host's SSH connection)."""
import atexit
import json
import sys
from collections import Counter

from pyinfra.connectors.ssh import SSHConnector
from pyinfra_cli.main import main

SENT = Counter()


def counted(method):
    def wrapper(self, *args, **kwargs):
        SENT[self.host.name] += 1
        return method(self, *args, **kwargs)
    return wrapper


for name in ("run_shell_command", "put_file", "get_file"):
    setattr(SSHConnector, name, counted(getattr(SSHConnector, name)))
atexit.register(lambda: print(f"remote commands: {json.dumps(dict(SENT))}", file=sys.stderr))

if __name__ == "__main__":
    sys.argv[0] = "pyinfra"
    main()
