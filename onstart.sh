#!/usr/bin/env bash
# Red's start phase. vast runs this on every container start (--onstart-cmd 'bash /opt/red/onstart.sh'):
# it re-applies the deploy with phase=start (the image's settings, the instance's environment on top),
# then starts supervisord if no supervisord answers. Safe to re-run; a start waits while another
# start or a provision over SSH holds the target's lock.
# --foreground: supervisord becomes this process (a container's main process: `docker stop` stops
# every program cleanly).
set -uo pipefail
RED_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONFIG=/etc/supervisor/supervisord.conf
LOCK=/run/red.lock  # tasks/facts.py LOCK
SOCKET=/run/supervisor.sock  # tasks/services.py SOCKET

# whether supervisord answers on its socket (a connection, in a hundredth of supervisorctl's time);
# never judged by a pidfile: /run outlives a container restart while PIDs repeat
running() {
    "$RED_DIR/venv/bin/python" -c 'import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' \
        "$SOCKET" 2>/dev/null
}

exec 9>>"$LOCK"
flock 9

cd "$RED_DIR" || exit 1
# the start phase's output is also kept in logs_dir/onstart.log (the last start's; the one before as .1),
# whose last line says how it ended (red-doctor reads it)
logs_dir=$("$RED_DIR/venv/bin/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["logs_dir"])' \
    /etc/red/settings.json 2>/dev/null) || logs_dir=/logs
log=$logs_dir/onstart.log
mkdir -p "$logs_dir" && { [ ! -f "$log" ] || mv -f "$log" "$log.1"; }
"$RED_DIR/venv/bin/pyinfra" -y @local deploy.py --data phase=start 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if [ "$status" -eq 0 ]; then
    echo "onstart.sh: the start phase finished at $(date -Iseconds)" | tee -a "$log"
else
    echo "onstart.sh: the start phase failed (exit $status) at $(date -Iseconds): see the lines starting with red:" \
        "above; supervisord starts with what was applied" | tee -a "$log" >&2
fi

if running; then
    [ "${1:-}" = "--foreground" ] || exit "$status"
    # a re-run in the foreground while supervisord runs: stay until it stops, and stop it on SIGTERM
    trap 'supervisorctl -c "$CONFIG" shutdown >/dev/null; exit 0' TERM INT
    while running; do sleep 2 & wait $!; done
    exit "$status"
fi
# supervisord's first poll (a second) comes before it starts any program: nudged (files/supervisor/red-nudge)
/usr/local/bin/red-nudge "$SOCKET" 3 9>&- &
# supervisord must not inherit the lock (fd 9), or the next start would wait for it forever
if [ "${1:-}" = "--foreground" ]; then
    exec supervisord -n -c "$CONFIG" 9>&-
fi
supervisord -c "$CONFIG" 9>&- || status=$?
for _ in $(seq 100); do running && break; sleep 0.1; done
exit "$status"
