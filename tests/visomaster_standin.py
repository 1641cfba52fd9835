"""A local stand-in for VisoMaster's repository (the real one is out of reach here): a real git
repository with upstream's shape (main.py at the root, app/, requirements_cu124.txt and
requirements_cu118.txt), whose main.py opens a titled PySide6 window, and a folder of small wheels
that re-create the app's two known package conflicts (onnxruntime beside onnxruntime-gpu, and
opencv-python instead of opencv-python-headless). Their versions carry a local label (+standin), so
pip can only find them here, never on PyPI.

Sandbox hosts see this folder at the same path (Sandbox.share), so `file://` URLs work on both sides.
An image build sees nothing of it: serve the folder (tests/engine.py, StandInServer) and give the
wheels' URL (`wheels_url`), which the requirements files then name instead of the folder.
"""
import base64
import hashlib
import subprocess
import zipfile
from pathlib import Path

TITLE = "VisoMaster stand-in"
MAIN = f'''"""Stand-in for VisoMaster's main.py: a titled window, its own requirements imported."""
import sys

import tqdm  # noqa: F401 - a requirement of the app, imported as the real app imports its own
from PySide6 import QtWidgets

import app.ui

application = QtWidgets.QApplication(sys.argv)
window = app.ui.window("{TITLE}")
window.show()
sys.exit(application.exec())
'''
UI = '''"""The stand-in's window: small, amber, at the top left."""
from PySide6 import QtWidgets


def window(title):
    label = QtWidgets.QLabel(title)
    label.setWindowTitle(title)
    label.setStyleSheet("background: #e0a030; color: black; font-size: 28px; padding: 24px;")
    label.resize(520, 200)
    label.move(60, 60)
    return label
'''
# name -> {path in the wheel: content}; both onnxruntime wheels write the same package, as the real ones do
WHEELS = {
    "onnxruntime": {"onnxruntime/__init__.py": 'FLAVOUR = "cpu"\n'},
    "onnxruntime_gpu": {"onnxruntime/__init__.py": 'FLAVOUR = "gpu"\n',
                        "onnxruntime/capi/providers_cuda.txt": "CUDAExecutionProvider\n"},
    "opencv_python": {"cv2/__init__.py": "HEADLESS = False\n", "cv2/qt/plugins/platforms/README": "Qt plugins\n"},
    "opencv_python_headless": {"cv2/__init__.py": "HEADLESS = True\n"},
    "red_extra": {"red_extra/__init__.py": "ADDED = True\n"},
}
VERSIONS = {"onnxruntime": "1.20.0+standin", "onnxruntime_gpu": "1.20.0+standin",
            "opencv_python": "4.10.0.84+standin", "opencv_python_headless": "4.10.0.84+standin",
            "red_extra": "1.0+standin"}


def requirements(find_links, extra=()):
    """A requirements file of the stand-in, with its wheels found at `find_links` (a URL)."""
    return "\n".join([
        f"--find-links {find_links}",
        "PySide6-Essentials==6.7.2",
        "tqdm==4.66.5",
        f"onnxruntime-gpu=={VERSIONS['onnxruntime_gpu']}",
        f"onnxruntime=={VERSIONS['onnxruntime']}",
        f"opencv-python=={VERSIONS['opencv_python']}",
        *extra,
    ]) + "\n"


class StandIn:
    """The folder: `origin.git` (bare, what visomaster_repo points at), `work` (where the test
    commits), `wheels`. The requirements files find the wheels at `wheels_url` when given (the folder
    served over HTTP), else in the folder itself (`file://`)."""

    def __init__(self, folder, wheels_url=None):
        self.folder = Path(folder)
        self.origin = self.folder / "origin.git"
        self.work = self.folder / "work"
        self.wheels = self.folder / "wheels"
        self.find_links = wheels_url or f"file://{self.wheels}"

    @property
    def url(self):
        return f"file://{self.origin}"

    def make(self):
        self.wheels.mkdir(parents=True)
        for name, files in WHEELS.items():
            build_wheel(self.wheels, name, VERSIONS[name], files)
        self.work.mkdir()
        self.git("init", "--quiet", "--initial-branch=main")
        self.write({"main.py": MAIN, "app/__init__.py": "", "app/ui.py": UI,
                    "requirements_cu124.txt": requirements(self.find_links),
                    "requirements_cu118.txt": requirements(self.find_links),
                    ".gitignore": "model_assets\ntensorrt-engines\n.thumbnails/\nlast_workspace.json\n"})
        self.commit("The stand-in app")
        self.git("tag", "v0.1.0")
        self.commit("A second commit on main", {"app/version.py": 'VERSION = "0.1.1"\n'})
        subprocess.run(["git", "clone", "--quiet", "--bare", str(self.work), str(self.origin)], check=True)
        self.git("remote", "add", "origin", str(self.origin))
        return self

    def write(self, files):
        for path, content in files.items():
            target = self.work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)

    def commit(self, message, files=None, push=False):
        """Commits (the files, if given) in the work tree; pushes main to origin when asked. Returns the commit."""
        if files:
            self.write(files)
        self.git("add", "-A")
        self.git("-c", "user.name=Red tests", "-c", "user.email=tests@red.invalid", "commit", "--quiet", "-m", message)
        if push:
            self.git("push", "--quiet", "origin", "main", "--tags")
        return self.head()

    def head(self):
        return self.git("rev-parse", "HEAD").strip()

    def git(self, *args):
        return subprocess.run(["git", "-C", str(self.work), *args], check=True, capture_output=True,
                              text=True).stdout


def build_wheel(folder, name, version, files):
    """A pure-Python wheel, written as the wheel format says (no build tools needed)."""
    dist_info = f"{name}-{version}.dist-info"
    metadata = {
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: red-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    contents = {**files, **metadata}
    record = "".join(f"{path},sha256={_digest(text)},{len(text.encode())}\n" for path, text in contents.items())
    record += f"{dist_info}/RECORD,,\n"
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as wheel:
        for path, text in {**contents, f"{dist_info}/RECORD": record}.items():
            wheel.writestr(path, text)


def _digest(text):
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
