#!/usr/bin/env bash
# Red on a stock image: paste this file as the instance's on-start command (vast keeps it, so no
# secret goes here: VNC_PW, tokens and keys come from the instance's environment, as always).
# First start: installs what Red needs (git, python3-venv), gets Red from RED_REPO at RED_REF (the
# instance's environment), applies the provision phase with @local (RED_DATA: settings for it, as the
# Dockerfile's: "--data NAME=VALUE ..."; kept for every start), then runs /opt/red/onstart.sh.
# Every later start: only /opt/red/onstart.sh. Output also goes to /var/log/red-bootstrap.log.
set -uo pipefail
SOURCE=/opt/red-bootstrap  # Red's checkout (root's); the deploy installs itself to red_dir (/opt/red)
DONE=$SOURCE/.provisioned
exec > >(tee -a /var/log/red-bootstrap.log) 2>&1

say() { echo "red-bootstrap: $*"; }
stop() { say "$*"; exit 1; }

if [ -f "$DONE" ]; then
    exec bash "$(cat "$DONE")/onstart.sh"
fi
[ -n "${RED_REPO:-}" ] || stop "RED_REPO is not set: add -e RED_REPO=<Red's Git URL> to the instance's environment"
[ -n "${RED_REF:-}" ] || stop "RED_REF is not set: add -e RED_REF=<a branch, tag or commit of Red> to the instance's environment"
case "$RED_REPO" in -*) stop "RED_REPO must be a Git URL, not an option: $RED_REPO";; esac
case "$RED_REF" in -*|*..*) stop "RED_REF must name a branch, tag or commit: $RED_REF";; esac
read -ra settings <<< "${RED_DATA:-}"
for ((i = 0; i < ${#settings[@]}; i += 2)); do
    if [ "${settings[i]}" != --data ] || ! [[ "${settings[i + 1]:-}" =~ ^[a-z_]+= ]]; then
        stop "RED_DATA holds only --data NAME=VALUE pairs, not: ${settings[*]:i:2}"
    fi
done

say "installing what Red needs (git, python3-venv)"
missing=()
command -v git >/dev/null || missing+=(git)
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -q && apt-get install -y -q --no-install-recommends ca-certificates "${missing[@]}"; }; then
        stop "apt-get could not install ${missing[*]}"
    fi
fi

say "getting Red from $RED_REPO at $RED_REF"
git() { command git -c core.hooksPath=/dev/null -c protocol.ext.allow=never "$@"; }
if [ ! -d "$SOURCE/.git" ]; then
    if ! { rm -rf "$SOURCE.new" && git init -q "$SOURCE.new" && git -C "$SOURCE.new" remote add origin -- "$RED_REPO" \
            && mv "$SOURCE.new" "$SOURCE"; }; then
        stop "cannot make $SOURCE"
    fi
fi
git -C "$SOURCE" remote set-url origin -- "$RED_REPO"
if ! { git -C "$SOURCE" fetch -q --depth 1 origin -- "$RED_REF" && git -C "$SOURCE" checkout -q --force --detach FETCH_HEAD; }; then
    stop "cannot fetch $RED_REF from $RED_REPO"
fi

say "Red's own environment"
cd "$SOURCE" || stop "no $SOURCE"
{ [ -x venv/bin/pyinfra ] || { python3 -m venv venv && venv/bin/pip install -q -r requirements.txt; }; } \
    || stop "cannot install Red's requirements (requirements.txt)"

say "the provision phase"
venv/bin/pyinfra -y @local deploy.py "${settings[@]}" || stop "the provision phase failed: see the lines starting with red: above"
red_dir=$(venv/bin/python -c 'import json; print(json.load(open("/etc/red/settings.json"))["red_dir"])') \
    || stop "the provision phase left no /etc/red/settings.json"
echo "$red_dir" > "$DONE"
say "done; from now on every start runs $red_dir/onstart.sh"
exec bash "$red_dir/onstart.sh"
