#!/usr/bin/env bash
# Red's start phase. vast runs this on every container start (--onstart-cmd 'bash /opt/red/onstart.sh'):
# it re-applies the deploy with phase=start (the image's settings, the instance's environment on top),
# then makes sure supervisord runs. Safe to re-run; a second start at the same time waits for the first.
# --foreground: then run supervisord in the foreground, as a container's main process.
set -uo pipefail
RED_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONFIG=/etc/supervisor/supervisord.conf

# supervisord is running when its pidfile names a live supervisord (also while it reloads)
running() { pid=$(cat /run/supervisord.pid 2>/dev/null) && grep -qa supervisord "/proc/$pid/cmdline" 2>/dev/null; }

exec 9>/run/red-onstart.lock
flock 9

cd "$RED_DIR"
"$RED_DIR/venv/bin/pyinfra" -y @local deploy.py --data phase=start
status=$?
[ "$status" -eq 0 ] || echo "onstart.sh: the start phase failed (exit $status); starting supervisord with the last good configuration" >&2

# whatever the apply's outcome, the services come up
if ! running; then
    # supervisord must not inherit the lock (fd 9), or the next start would wait for it forever
    if [ "${1:-}" = "--foreground" ]; then
        exec supervisord -n -c "$CONFIG" 9>&-
    fi
    supervisord -c "$CONFIG" 9>&- || status=$?
    for _ in $(seq 100); do supervisorctl -c "$CONFIG" pid >/dev/null 2>&1 && break; sleep 0.1; done
fi
if [ "${1:-}" = "--foreground" ]; then
    # supervisord already runs (a re-run): stay in the foreground while it does
    while running; do sleep 5; done
fi
exit "$status"
