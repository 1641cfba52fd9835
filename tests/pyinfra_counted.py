"""pyinfra's CLI, counting what it sends to each SSH host: `python tests/pyinfra_counted.py ARGS`.

At exit it prints one line to stderr: `remote commands: {"HOST": N, ...}` (commands and file
transfers, each a channel on the host's SSH connection).
With RED_LOCK_PER_HOST=1 (tests/benchmark.py fleet, one sandbox reached as many hosts), each host
takes a run lock of its own on the target, as many instances would, instead of waiting for the others'."""
import atexit
import json
import os
import sys
from collections import Counter
from pathlib import Path

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
if os.environ.get("RED_LOCK_PER_HOST") == "1":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from pyinfra import host
    from tasks import facts

    one_lock = facts.run_lock
    facts.run_lock = lambda controller_pid=None: one_lock(controller_pid).replace(facts.LOCK,
                                                                                 f"{facts.LOCK}.{host.name}")
atexit.register(lambda: print(f"remote commands: {json.dumps(dict(SENT))}", file=sys.stderr))

if __name__ == "__main__":
    sys.argv[0] = "pyinfra"
    main()
