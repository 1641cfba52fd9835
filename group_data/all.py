# Red's settings, each with its default. Override with `--data NAME=VALUE`; vast's environment
# variables override where named. Kinds and checks: tasks/settings.py.

# What this run may do: provision (over SSH, starts services), build (image build, starts nothing), start (onstart.sh).
phase = "provision"

# The persistent data volume: code, models, output (WORKSPACE overrides).
workspace = "/workspace"

# Where every service's stdout and stderr land, rotated by size.
logs_dir = "/logs"

# The unprivileged user the desktop and VisoMaster run as.
desktop_user = "red"

# Where Red installs itself on the target, for onstart.sh (the Dockerfile copies it there too).
red_dir = "/opt/red"

# Seconds an apt package list stays fresh before the next apply runs `apt-get update`.
apt_cache_time = 86400

# More Debian packages to install on every host, e.g. ["htop", "vim"].
extra_apt_packages = []

# Size at which a service's log in logs_dir is rotated, in bytes.
log_max_bytes = 10 * 1024 * 1024

# How many rotated log files to keep per service.
log_backups = 5
