# Red's settings, each with its default. Override with `--data NAME=VALUE`; vast's environment
# variables override where named. Kinds and checks: tasks/settings.py.

# What this run may do: provision (over SSH, starts services), build (image build, starts nothing), start (onstart.sh).
phase = "provision"

# Ask the target about everything the deploy manages in one command per run; false: each operation asks for itself.
snapshot = True

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

# Size of the virtual screen the desktop runs on, WIDTHxHEIGHT (VNC_RESOLUTION overrides).
vnc_resolution = "1920x1080"

# Port of the raw VNC server (x11vnc), for VNC clients.
vnc_port = 5901

# Port of noVNC, the desktop in a browser.
novnc_port = 6901

# VNC password (VNC_PW overrides; VNC uses its first 8 characters); empty: Red generates one, kept on the host.
vnc_password = ""

# Open VNC and noVNC without any password (VNC_PASSWORDLESS overrides): only behind another lock.
vnc_passwordless = False

# The desktop's window manager: fluxbox or openbox.
window_manager = "fluxbox"

# The Python the app's environment is made with (the distribution's own, or deadsnakes on Ubuntu; Debian 12 has 3.11).
python_version = "3.10"

# Where VisoMaster is cloned from.
visomaster_repo = "https://github.com/visomaster/VisoMaster.git"

# The branch, tag or commit of VisoMaster to run; a branch is followed at every apply.
visomaster_ref = "v0.1.6"

# Where the VisoMaster checkout lives; empty: <workspace>/VisoMaster.
visomaster_dir = ""

# The app's own virtual environment (a link to the last environment that installed and imported cleanly).
visomaster_venv = "/opt/visomaster/venv"

# Which of the checkout's requirements files to install: cu124 (requirements_cu124.txt) or cu118.
cuda_flavour = "cu124"

# Start VisoMaster on the desktop under supervisor (restarted if it stops).
visomaster_autostart = True

# How the web apps are reached: portal (Caddy on their public ports, one login for all) or direct (each its own lock).
access = "portal"

# Port of the Instance Portal page and the logs (OPEN_BUTTON_PORT overrides; vast's "Open" button uses 1111).
portal_port = 1111

# The portal's token (OPEN_BUTTON_TOKEN, else WEB_PASSWORD, overrides); empty: Red generates one, kept on the host.
portal_token = ""

# The user name for the portal's basic auth (WEB_USERNAME overrides).
web_username = "vastai"

# The password for the portal's basic auth (WEB_PASSWORD overrides); empty: the portal's token.
web_password = ""

# More portal apps, new ports for Red's (PORTAL_CONFIG overrides): vast's host:port:internal:path:Name|... or JSON.
portal_config = ""

# Port of Red's OpenSSH server, key-only (pyinfra's own ssh_port is the port it connects to).
sshd_port = 22

# Public keys that may log in as root, e.g. ["ssh-ed25519 AAAAC3... me@laptop"]; keys added by hand are kept.
ssh_authorized_keys = []

# Public keys the instance's environment gives (PUBLIC_KEY, SSH_PUBLIC_KEY), added like ssh_authorized_keys.
instance_public_keys = []

# Port of JupyterLab (vast's Jupyter launch mode expects 8080).
jupyter_port = 8080

# JupyterLab's root folder; empty: the workspace (JUPYTER_DIR overrides).
jupyter_dir = ""

# JupyterLab's token (JUPYTER_TOKEN, else OPEN_BUTTON_TOKEN, overrides); empty: Red generates one, kept on the host.
jupyter_token = ""

# Open JupyterLab without any token (warns): only behind another lock.
jupyter_open = False

# When model files are fetched: build (in the apply: image build, provision), start (in the background), never.
models_at = "start"

# Where the model files live (the checkout's model_assets links here); empty: <workspace>/models.
models_dir = ""

# A JSON manifest of the model files ([{"name", "path", "sha256", "url"}]); empty: the checkout's own model table.
models_manifest = ""

# Connections at once for the model files, in all: a large file over several, small files one after another.
models_connections = 16

# A mirror that replaces the download host of every model URL, e.g. http://10.0.0.5:8000; empty: the URLs as listed.
models_base_url = ""
