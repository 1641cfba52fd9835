"""What the controller pays per host, kept to what differs between hosts.

pyinfra declares every operation of every host in one process. Two of its steps cost far more than
their result (measured by profiling a no-op over 32 hosts: about half the controller's time per host):
- the operation's order, taken from the call stack with `inspect.stack()`, which reads the source
  line of every frame (and searches every loaded module for it) only to keep the line numbers;
- the global arguments' names and types, read again with `typing.get_type_hints` for every operation,
  though they belong to one class that never changes.
`faster_declarations()` replaces the two with functions that give the same values (tests/test_controller.py
compares them). Pinned to the pyinfra in requirements.txt; a pyinfra without them fails loudly here.
"""
import socket
import sys
from functools import lru_cache

import pyinfra
from pyinfra import host
from pyinfra.api import arguments, util

OPERATION = sys.modules["pyinfra.api.operation"]  # `pyinfra.api.operation` the name is the decorator


def operation_order(state):
    """pyinfra.api.util.get_operation_order_from_stack's line numbers, from the frames themselves: the
    deploy file's line being run (CLI), then the line of every frame from the deploy file's first frame
    down, leaving out pyinfra's own."""
    frames = []
    frame = sys._getframe()  # this one too, standing where pyinfra's own function stands (left out below)
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    frames.reverse()
    first = 0
    if state.current_deploy_filename:
        for first, frame in enumerate(frames):
            if frame.f_code.co_filename == state.current_deploy_filename:
                break
    numbers = [state.current_op_file_number] if pyinfra.is_cli else []
    numbers += [frame.f_lineno for frame in frames[first:] if frame.f_code is not operation_order.__code__
                and not frame.f_code.co_filename.startswith(util.PYINFRA_INSTALL_DIR)]
    return numbers


def faster_declarations():
    """Installs operation_order and a cached all_global_arguments into pyinfra (once per process)."""
    if OPERATION.get_operation_order_from_stack is operation_order:
        return
    OPERATION.get_operation_order_from_stack = operation_order
    arguments.all_global_arguments = lru_cache(maxsize=1)(arguments.all_global_arguments)


def disable_nagle():
    """One round trip per command instead of a delayed ACK (paramiko never sets TCP_NODELAY)."""
    client = getattr(host.connector, "client", None)
    transport = client.get_transport() if client else None
    sock = getattr(transport, "sock", None)
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
