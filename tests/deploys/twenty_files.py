"""Twenty more managed files, run after deploy.py: a no-op apply must not send more for them."""
from tasks import managed

FOLDER = "/etc/red-twenty"

for number in range(20):
    managed.put(name=f"Twenty files: {number:02}", src=f"managed file {number}\n".encode(),
                dest=f"{FOLDER}/file-{number:02}", mode="644")
