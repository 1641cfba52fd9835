# Managed by Red: the cells of the diagnostics notebook (tasks/diagnostics.py makes red-diagnostics.ipynb
# from them with nbformat). "# %%" starts a code cell, "# %% [markdown]" a text cell (its lines uncommented).

# %% [markdown]
# # Red diagnostics
# What is wrong on this instance, and what to do about it. Reading changes nothing: run the cells from
# the top (Run ▸ Run All Cells). Each fix at the end asks before it does anything.
#
# This notebook is Red's: Red refreshes it when its cells change; a copy you edited is kept beside it,
# named `red-diagnostics (yours, DATE).ipynb`. It runs as the desktop user, in the app's environment.

# %%
import json
import shutil
import subprocess
from collections import deque
from pathlib import Path

CONFIG = json.loads(Path("/etc/red-doctor.json").read_text())  # what Red's deploy set up


def sh(*argv):
    """Runs a command and shows what it printed."""
    done = subprocess.run(argv, capture_output=True, text=True)
    print((done.stdout + done.stderr).rstrip() or f"(nothing printed; exit {done.returncode})")


def fix(*request):
    """A fix, carried out by red-fix (root's server does it for the desktop user) once you answer yes."""
    command = " ".join(["red-fix", *request])
    try:
        answer = input(f"{command}: type yes to run it: ")
    except Exception:  # nobody to ask: the notebook is being run whole, by a machine
        print(f"not run: {command} runs only when you run its cell and answer yes")
        return
    if answer.strip().lower() == "yes":
        sh("red-fix", *request)
    else:
        print("not run")

# %% [markdown]
# ## Findings
# red-doctor: one line per check (`ok`, `warn` or `fail`), and what to do about each warn or fail.

# %%
sh("red-doctor")

# %% [markdown]
# ## Programs
# Every supervisor program's state, as the portal page shows it.

# %%
states = json.loads(Path(CONFIG["states_file"]).read_text())
for name, state in sorted(states["programs"].items()):
    print(f"{name:<16} {state}")
print(f"(as of {states['updated']})")

# %% [markdown]
# ## Logs
# The last ten lines of every program's log.

# %%
for log in sorted(Path(CONFIG["logs_dir"]).glob("*.log")):
    try:
        with open(log, errors="replace") as handle:
            print(f"==> {log} <==\n{''.join(deque(handle, 10))}")
    except OSError as error:  # supervisor's own temporary files are root's alone
        print(f"==> {log} <== not readable here: {error.strerror}\n")

# %% [markdown]
# ## GPU

# %%
if shutil.which("nvidia-smi"):
    sh("nvidia-smi")
else:
    print("no nvidia-smi on this instance: no GPU")

# %% [markdown]
# ## Disk

# %%
sh("df", "-h", "/", CONFIG["workspace"], CONFIG["models_dir"])

# %% [markdown]
# ## Fixes
# Each cell below asks first: answer `yes` to run it. Run one at a time (Shift+Enter).
#
# Restart the app (VisoMaster) on the desktop; unsaved work in it is lost:

# %%
fix("restart", "visomaster")

# %% [markdown]
# Restart the desktop's VNC server; the browser's desktop tab reconnects:

# %%
fix("restart", "x11vnc")

# %% [markdown]
# Fetch and verify the model files again (only what is missing or wrong is fetched):

# %%
fix("restart", "models")

# %% [markdown]
# Run the start phase again: Red re-applies its deploy on this instance and restarts what changed:

# %%
fix("start-phase")
