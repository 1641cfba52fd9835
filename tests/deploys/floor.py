"""pyinfra's own cost of a deploy's operations: RED_FLOOR_OPERATIONS operations that change nothing and
ask nothing, after one command (as Red's first look), with what deploy.py does for the controller at
each host (controller.at_each_host): tests/benchmark.py fleet's measure of what a no-op over many hosts
costs before any of Red's own work."""
import os

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.server import Hostname

from tasks import controller


@operation()
def nothing():
    host.noop("nothing to do")
    yield from ()


controller.at_each_host()
host.get_fact(Hostname)
for number in host.loop(range(int(os.environ["RED_FLOOR_OPERATIONS"]))):
    nothing(name=f"Nothing {number}")
