"""What the controller pays per host, kept to what differs between hosts.

pyinfra declares every operation of every host in one process. Two of its steps cost far more than
their result (measured by profiling a no-op over 32 hosts: about half the controller's time per host):
- the operation's order, taken from the call stack with `inspect.stack()`, which reads the source
  line of every frame (and searches every loaded module for it) only to keep the line numbers;
- the global arguments' names and types, read again with `typing.get_type_hints` for every operation,
  though they belong to one class that never changes.
`faster_declarations()` replaces the two with functions that give the same values (tests/test_controller.py
compares them), and hashes each operation order once (the same lines for every host). Pinned to the
pyinfra in requirements.txt; a pyinfra without them fails loudly here.

Then, per operation and host, most of what was left (profiled with py-spy over 100 hosts):
- every global argument (32 names) looked up in the host's data, six layers deep, each miss a KeyError
  raised and caught, and the inventory's group data merged into a new dict at each lookup;
- the operation function's signature made again (`inspect.signature`) only to bind its arguments, and
  bound, though whether a call binds depends on its shape alone;
- each global argument's value that differs from its default (an operation's name, _ignore_errors)
  checked against its type by typeguard, the same names and flags for every host.
`faster_host_data()` looks up the same layers in the same order without the exceptions, merges a
host's groups' data once (the inventory does not change during a run), keeps each function's
signature (a function's signature does not change either) with the verdict of each call's shape, and
each value found to be of its argument's type. `faster_context()` reads pyinfra's context objects
(`host`, `state`: about 2,000 lookups per host) with one lookup of their module, not two.

And for every operation and host, a log line and its packets: `faster_output()` styles each text once
and leaves the thread (and the caller, unless debugging) out of log records; `faster_packets()`
checks each packet's MAC in C; `faster_operations()` runs in place, without a greenlet of its own,
a host's operation known to wait on nothing (Red's checked operations the snapshot shows unchanged).
Last, `freeze_heap()` keeps the garbage collector from walking again, for every host, what earlier
ones declared, and `tune_connection()` lets an idle connection's reader sleep. deploy.py calls them
all through `at_each_host()`.
"""
import contextlib
import gc
import hmac
import inspect
import logging
import socket
import sys
from copy import copy
from functools import lru_cache

import gevent
import paramiko.util
import pyinfra
from pyinfra import host
from pyinfra.api import arguments, operations, output, util
from pyinfra.api.exceptions import ArgumentTypeError
from pyinfra.api.host import HostData
from pyinfra.api.inventory import Inventory
from pyinfra.context import ContextObject, ctx_config

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
    first, deploy_file = 0, state.current_deploy_filename
    if deploy_file:
        for first, frame in enumerate(frames):
            if frame.f_code.co_filename == deploy_file:
                break
    numbers = [state.current_op_file_number] if pyinfra.is_cli else []
    numbers += [frame.f_lineno for frame in frames[first:] if frame.f_code is not operation_order.__code__
                and not frame.f_code.co_filename.startswith(util.PYINFRA_INSTALL_DIR)]
    return numbers


@lru_cache(maxsize=None)
def order_hash(numbers):
    return MAKE_HASH(numbers)


def operation_hash(order):
    """pyinfra's make_hash of an operation's order (its line numbers), made once per order: every host
    declares the same operations from the same lines."""
    if type(order) is list and all(type(number) is int for number in order):
        return order_hash(tuple(order))  # a tuple of the same numbers hashes as the list does
    return MAKE_HASH(order)


MAKE_HASH = util.make_hash


def at_each_host():
    """What deploy.py does for the controller at each host's deploy: the replacements installed (once
    per process), the heap frozen, the host's connection tuned (tune_connection)."""
    faster_declarations()
    faster_host_data()
    faster_context()
    faster_output()
    faster_packets()
    faster_operations()
    freeze_heap()
    client = getattr(host.connector, "client", None)  # SSH's (paramiko's); @local has none
    tune_connection(client.get_transport() if client else None)


def faster_declarations():
    """Installs operation_order, operation_hash and a cached all_global_arguments into pyinfra (once per
    process)."""
    if OPERATION.get_operation_order_from_stack is operation_order:
        return
    OPERATION.get_operation_order_from_stack = operation_order
    OPERATION.make_hash = operation_hash
    arguments.all_global_arguments = lru_cache(maxsize=1)(arguments.all_global_arguments)


def host_data_value(data, key):
    """HostData.__getattr__'s value: the first layer holding `key` (a callable layer called first), copied."""
    for layer in data.datas:
        if callable(layer):
            layer = layer()
        if type(layer) is dict:
            if key in layer:
                return copy(layer[key])
            continue
        try:
            return copy(layer[key])
        except KeyError:
            pass
    raise AttributeError(f"Host `{data.host}` has no data `{key}`")


@lru_cache(maxsize=None)
def groups_data(inventory, groups):
    """Inventory.get_groups_data, merged once per inventory and groups."""
    return GROUPS_DATA(inventory, groups)


GROUPS_DATA = Inventory.get_groups_data
HOST_DATA_VALUE = HostData.__getattr__


def global_arguments(state, host, kwargs):
    """pyinfra.api.arguments.pop_global_arguments's values, the host's data layers read once for every
    name: (the arguments, the names that were in `kwargs`, popped from it)."""
    layers = [layer() if callable(layer) else layer for layer in host.data.datas]
    if any(type(layer) is not dict for layer in layers):
        return POP_GLOBAL_ARGUMENTS(state, host, kwargs)
    config = ctx_config.get() if ctx_config.isset() else state.config
    deploy_kwargs = host.current_deploy_kwargs or {}
    in_host_data = {}  # each global argument's value in the first layer that has it
    for layer in reversed(layers):
        for key in layer.keys() & GLOBAL_ARGUMENT_NAMES:
            in_host_data[key] = layer[key]
    values, found = {}, []
    for key, kind in arguments.all_global_arguments():
        meta = arguments.all_argument_meta[key]
        default = copy(in_host_data[key]) if key in in_host_data else meta.default(config)
        if key in kwargs:
            found.append(key)
            value = kwargs.pop(key)
        else:
            value = deploy_kwargs.get(key, default)
        if meta.handler:
            value = meta.handler(config, value)
        if value != default:
            type_checked(key, kind, value)
        values[key] = value
    return values, found


def type_checked(key, kind, value):
    """pyinfra's type check of a global argument's value (typeguard), made once per argument, type and
    value: every host's operations give the same names and flags."""
    try:
        seen = (key, type(value), value) in TYPE_CHECKED
    except TypeError:  # unhashable: checked each time
        seen = False
    if not seen:
        util.raise_if_bad_type(value, kind, ArgumentTypeError, f"Invalid argument `{key}`:")
        with contextlib.suppress(TypeError):
            TYPE_CHECKED.add((key, type(value), value))


TYPE_CHECKED = set()
GLOBAL_ARGUMENT_NAMES = frozenset(arguments.all_argument_meta)


POP_GLOBAL_ARGUMENTS = arguments.pop_global_arguments
POP_GLOBAL_ARGUMENTS_USERS = [sys.modules[name] for name in ("pyinfra.api.operation", "pyinfra.api.deploy",
                                                             "pyinfra.api.facts")]


def faster_host_data():
    """Installs host_data_value, groups_data, global_arguments and a cached inspect.signature into
    pyinfra (once per process)."""
    if HostData.__getattr__ is host_data_value:
        return
    HostData.__getattr__ = host_data_value
    Inventory.get_groups_data = lambda inventory, groups: groups_data(inventory, tuple(groups))
    for module in POP_GLOBAL_ARGUMENTS_USERS:
        module.pop_global_arguments = global_arguments
    OPERATION.signature = lru_cache(maxsize=None)(ArgumentShapes)


class ArgumentShapes:
    """What pyinfra asks of an operation function's signature: `bind`, only to raise its TypeError for
    a call the function cannot take. Whether a call binds, and the error's text, depend on how many
    positional arguments it has and which keyword names (in their order), never on the values: the
    verdict is kept per shape (every host declares the same calls)."""

    def __init__(self, func):
        self.signature = inspect.signature(func)
        self.verdicts = {}

    def bind(self, *args, **kwargs):
        shape = (len(args), tuple(kwargs))
        verdict = self.verdicts.get(shape)
        if verdict is None:
            try:
                self.signature.bind(*args, **kwargs)
                verdict = ""
            except TypeError as error:
                verdict = str(error)
            self.verdicts[shape] = verdict
        if verdict:
            raise TypeError(verdict)


def context_value(self, key):
    """pyinfra.context.ContextObject.__getattr__'s value (`host.name`, `state.config`...), the context's
    module looked up once: pyinfra looks it up twice, through a method, at each of about 2,000 lookups
    per host."""
    module = self._container.module
    if module is None:
        return getattr(self._base_cls, key)
    return getattr(module, key)


def faster_context():
    """Installs context_value into pyinfra (once per process)."""
    ContextObject.__getattr__ = context_value


def faster_output():
    """pyinfra logs a line per operation and host. Its text styling (click.style, installed by its CLI)
    is remembered per text and style: it styles the same host names and statuses each time. And its
    log records leave out the thread and the process, which its format never shows, and, unless a
    logger shows debug lines (pyinfra's name the module they come from), the caller's file and line
    (the logging HOWTO's own "Optimization" switches): under gevent, naming the thread of each host's
    greenlet made a new dummy thread for each, and finding the caller walked the stack. Once per process."""
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    if not any(logger.isEnabledFor(logging.DEBUG) for logger in (logging.getLogger(), pyinfra.logger)):
        logging._srcfile = None  # the caller's file and line, which only pyinfra's debug lines show
    if not isinstance(output._format_text, StyledTexts):
        output.set_formatter(StyledTexts(output._format_text))


class StyledTexts(dict):
    """The formatter's result for each (text, style), kept once made; arguments that cannot be a key
    (none of pyinfra's calls) go to the formatter each time."""

    def __init__(self, formatter):
        super().__init__()
        self.formatter = formatter

    def __call__(self, text, *args, **kwargs):
        try:
            key = (text, args, tuple(kwargs.items()))
            return self[key]
        except TypeError:
            return self.formatter(text, *args, **kwargs)
        except KeyError:
            styled = self[key] = self.formatter(text, *args, **kwargs)
            return styled


def faster_packets():
    """paramiko compares each received packet's MAC byte by byte in Python (util.constant_time_bytes_eq);
    hmac.compare_digest gives the same answer, in constant time too, in C. Once per process."""
    paramiko.util.constant_time_bytes_eq = hmac.compare_digest


def faster_operations():
    """Installs run_single_op into pyinfra (once per process)."""
    if operations._run_single_op is not run_single_op:
        operations._run_single_op = run_single_op


def run_single_op(state, op_hash):
    """pyinfra's run of one operation on every host (operations._run_single_op), where it starts a
    greenlet for each host so that the hosts wait on their targets together, in batches of _parallel
    (config.PARALLEL: 20 per core). A host whose operation is known to finish without waiting on
    anything (IN_PLACE) runs it in place instead, before its batch's others start: a no-op's 67
    operations a host each paid for a greenlet, its start, its switch and its wait. Each host's
    operation runs, logs and counts as in pyinfra, in the same batches; the failed hosts are failed
    as there. An operation run host by host (_serial) goes to pyinfra's own."""
    op_meta = state.get_op_meta(op_hash)
    if op_meta.global_arguments["_serial"]:
        return RUN_SINGLE_OP(state, op_hash)
    state.trigger_callbacks("operation_start", op_hash)
    operations.log_operation_start(op_meta)
    hosts, failed = list(state.inventory.get_active_hosts()), set()
    size = op_meta.global_arguments["_parallel"] or len(hosts) or 1
    for batch in (hosts[start:start + size] for start in range(0, len(hosts), size)):
        failed.update(run_batch(state, op_hash, batch))
    state.fail_hosts(failed)
    state.trigger_callbacks("operation_end", op_hash)


def run_batch(state, op_hash, batch):
    """The hosts of `batch` whose operation `op_hash` failed, each run in place or in a greenlet."""
    failed, waiting = set(), {}
    with operations.progress_spinner(batch) as progress:
        for each in batch:
            if any(in_place(state, each, op_hash) for in_place in IN_PLACE):
                if not operations._run_host_op_with_context(state, each, op_hash):
                    failed.add(each)
                progress(each)
            else:
                waiting[state.pool.spawn(operations._run_host_op_with_context, state, each, op_hash)] = each
        for greenlet in gevent.iwait(list(waiting)):
            progress(waiting[greenlet])
    return failed | {each for greenlet, each in waiting.items() if not greenlet.get()}


RUN_SINGLE_OP = operations._run_single_op
# (state, host, op_hash) -> whether the host's operation finishes without waiting on anything (no
# command, no fact, no sleep), asked just before it runs: tasks/managed.py's checked operations
IN_PLACE = []


def freeze_heap():
    """Moves everything the controller holds when a host's deploy begins out of the garbage collector's
    reach (gc.freeze): pyinfra and the other modules, the inventory and the connections, what the hosts
    before declared. All of it lives until the run ends, yet each full collection walked it again, more
    with every host, and a last one at exit; now they see only what is new. (Garbage in a reference
    cycle from before, an exception's traceback, is then kept until the process ends: a run is short.)"""
    gc.freeze()


def tune_connection(transport):
    """An SSH connection (a paramiko transport, after its handshake) tuned for a run:
    - Nagle's algorithm off: one round trip per command instead of a delayed ACK (paramiko never
      sets TCP_NODELAY);
    - its reader wakes once a second while the connection is idle, not ten times: it wakes only to
      look whether to stop, to send a keepalive (ssh's ServerAliveInterval, whole seconds) or to begin
      a rekey, and close() closes the socket, which wakes it at once under gevent. A fleet's idle
      connections woke a thousand times a second, 2 ms of the controller's CPU per host in a no-op."""
    sock = getattr(transport, "sock", None)
    if not isinstance(sock, socket.socket):
        return
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if transport.is_active():
        sock.settimeout(IDLE_CHECK)


IDLE_CHECK = 1.0  # seconds between an idle connection's looks (paramiko's: 0.1)
