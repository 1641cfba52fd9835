"""The controller's replacements for pyinfra's costly steps give pyinfra's own values (tasks/controller.py)."""
import sys
from types import SimpleNamespace

import pyinfra
import pytest
from pyinfra.api import arguments, util

from tasks import controller


def nested(depth, call):
    """`call()` from `depth` frames of this file deeper (operations are declared from within tasks)."""
    return call() if depth == 0 else nested(depth - 1, call)


@pytest.mark.parametrize("is_cli", [True, False])
@pytest.mark.parametrize("deploy_file", [__file__, "/nowhere/deploy.py", None])
@pytest.mark.parametrize("depth", [0, 3])
def test_operation_order_is_pyinfras(monkeypatch, is_cli, deploy_file, depth):
    monkeypatch.setattr(pyinfra, "is_cli", is_cli)
    state = SimpleNamespace(current_deploy_filename=deploy_file, current_op_file_number=7)
    orders = [nested(depth, lambda: order(state)) for order in (util.get_operation_order_from_stack,
                                                                controller.operation_order)]
    assert orders[0] == orders[1]
    if deploy_file != "/nowhere/deploy.py":  # else only the innermost frame counts, and it is pyinfra's own
        assert len(orders[0]) > depth, "the line numbers of this file's frames are in it"


def test_installed_once_and_global_arguments_are_pyinfras(monkeypatch):
    operation = sys.modules["pyinfra.api.operation"]
    # put back at the test's end: the rest of the suite sees pyinfra as it was
    monkeypatch.setattr(operation, "get_operation_order_from_stack", operation.get_operation_order_from_stack)
    monkeypatch.setattr(arguments, "all_global_arguments", arguments.all_global_arguments)
    controller.faster_declarations()
    controller.faster_declarations()  # every host's deploy.py calls it
    cached = arguments.all_global_arguments
    assert operation.get_operation_order_from_stack is controller.operation_order
    assert cached() == cached.__wrapped__() and cached() is cached()
    assert not hasattr(cached.__wrapped__, "__wrapped__"), "wrapped once, not once per host"
