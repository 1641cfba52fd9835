"""The controller's replacements for pyinfra's costly steps give pyinfra's own values (tasks/controller.py),
and Red's own count of the changes so far is the full count."""
import inspect
import socket
import sys
import threading
import time
from types import SimpleNamespace

import paramiko
import pyinfra
import pytest
from pyinfra.api import Config, Inventory, State, arguments, util
from pyinfra.api.exceptions import ArgumentTypeError
from pyinfra.api.host import HostData
from pyinfra.api.operation import OperationMeta
from pyinfra.context import ctx_host, ctx_state

from tasks import controller, managed


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
    monkeypatch.setattr(operation, "make_hash", operation.make_hash)
    controller.faster_declarations()
    controller.faster_declarations()  # every host's deploy.py calls it
    cached = arguments.all_global_arguments
    assert operation.get_operation_order_from_stack is controller.operation_order
    assert cached() == cached.__wrapped__() and cached() is cached()
    assert not hasattr(cached.__wrapped__, "__wrapped__"), "wrapped once, not once per host"
    assert operation.make_hash is controller.operation_hash


@pytest.mark.parametrize("order", [[12, 40, 7], [12, 40, 7, 1], [12, True], (3, 4), [1, [2, 3]], [1, "a"], []])
def test_an_operation_orders_hash_is_pyinfras_and_made_once(order):
    assert controller.operation_hash(order) == controller.MAKE_HASH(order)
    assert controller.operation_hash(list(order)) == controller.MAKE_HASH(list(order)), "asked again: the same"


def inventory_and_state():
    """A real inventory: global argument names set in every layer a host's data has."""
    inventory = Inventory((["one", ("two", {"_sudo": True, "name": "from the host", "vnc": "1024x768"})],
                           {"_timeout": 5}),
                          override_data={"_retries": 1},
                          web=(["two"], {"_sudo_user": "www", "_env": {"A": "1"}}),
                          db=(["one", "two"], {"_sudo_user": "db", "_chdir": "/srv"}))
    return inventory, State(inventory, Config())


@pytest.mark.parametrize("name", ["one", "two"])
@pytest.mark.parametrize("deploy_kwargs", [None, {"_sudo": True, "_chdir": "/deploy"}])
@pytest.mark.parametrize("kwargs", [{}, {"_sudo": False, "name": "Op", "path": "/x"},
                                    {"_retries": 3, "_env": {"B": "2"}, "_if": [bool]}])
def test_global_arguments_are_pyinfras(name, deploy_kwargs, kwargs):
    inventory, state = inventory_and_state()
    host = inventory.get_host(name)
    host.current_deploy_kwargs = deploy_kwargs
    host.data._chdir = "/set/in/the/deploy"  # the override layer a deploy writes to
    theirs, ours = dict(kwargs), dict(kwargs)
    assert controller.POP_GLOBAL_ARGUMENTS(state, host, theirs) == controller.global_arguments(state, host, ours)
    assert theirs == ours, "the same names popped from the operation's arguments"


def test_a_bad_global_argument_is_refused_as_pyinfra_refuses_it():
    inventory, state = inventory_and_state()
    errors = []
    for pop in (controller.POP_GLOBAL_ARGUMENTS, controller.global_arguments):
        with pytest.raises(ArgumentTypeError) as error:
            pop(state, inventory.get_host("one"), {"_retries": "many"})
        errors.append(str(error.value))
    assert errors[0] == errors[1]


def test_a_value_checked_once_is_still_refused_as_another_type_or_when_bad_again():
    inventory, state = inventory_and_state()
    host = inventory.get_host("one")
    controller.global_arguments(state, host, {"_sudo": True, "_retries": 2})
    for bad in ({"_sudo": 1}, {"_retries": "many"}, {"_retries": "many"}):  # 1 == True, but not a bool
        with pytest.raises(ArgumentTypeError) as ours:
            controller.global_arguments(state, host, dict(bad))
        with pytest.raises(ArgumentTypeError) as theirs:
            controller.POP_GLOBAL_ARGUMENTS(state, host, dict(bad))
        assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("key", ["_sudo", "_sudo_user", "_retries", "_timeout", "vnc", "name", "missing"])
def test_host_data_and_groups_data_are_pyinfras(key):
    inventory, _ = inventory_and_state()
    for host in inventory:
        values = []
        for lookup in (controller.HOST_DATA_VALUE, controller.host_data_value):
            try:
                values.append(lookup(host.data, key))
            except AttributeError as error:
                values.append(str(error))
        assert values[0] == values[1]
        assert controller.groups_data(inventory, tuple(host.groups)) == controller.GROUPS_DATA(inventory, host.groups)


def test_host_data_installed_once_and_signatures_are_inspects(monkeypatch):
    operation = sys.modules["pyinfra.api.operation"]
    monkeypatch.setattr(HostData, "__getattr__", HostData.__getattr__)
    monkeypatch.setattr(Inventory, "get_groups_data", Inventory.get_groups_data)
    monkeypatch.setattr(operation, "signature", operation.signature)
    for module in controller.POP_GLOBAL_ARGUMENTS_USERS:
        monkeypatch.setattr(module, "pop_global_arguments", module.pop_global_arguments)
    controller.faster_host_data()
    controller.faster_host_data()
    assert HostData.__getattr__ is controller.host_data_value
    assert all(module.pop_global_arguments is controller.global_arguments
               for module in controller.POP_GLOBAL_ARGUMENTS_USERS)
    assert operation.signature(inventory_and_state).signature == inspect.signature(inventory_and_state)
    assert operation.signature(inventory_and_state) is operation.signature(inventory_and_state)
    assert not hasattr(operation.signature.__wrapped__, "__wrapped__"), "wrapped once, not once per host"


def an_operation(path, present=True, *more, user, mode="644", **options):
    yield from ()


@pytest.mark.parametrize("args, kwargs", [
    ((), {}), (("/x",), {}), (("/x",), {"user": "red"}), ((), {"path": "/x", "user": "red"}),
    (("/x",), {"path": "/y", "user": "red"}), (("/x", False, 1, 2), {"user": "red", "extra": 1}),
    (("/x",), {"user": "red", "mode": "600", "present": False}),
])
def test_a_calls_verdict_is_inspects_bind_and_kept_per_shape(args, kwargs):
    shapes = controller.ArgumentShapes(an_operation)
    verdicts = []
    for bind in (inspect.signature(an_operation).bind, shapes.bind, shapes.bind):
        try:
            bind(*args, **kwargs)
            verdicts.append(None)
        except TypeError as error:
            verdicts.append(str(error))
        args, kwargs = tuple(f"other {arg}" for arg in args), {key: None for key in kwargs}  # same shape
    assert verdicts[0] == verdicts[1] == verdicts[2]
    assert len(shapes.verdicts) == 1, "one verdict for the shape, whatever the values"


def test_a_keyword_functions_verdict_names_the_first_unexpected_keyword_as_inspect_does():
    def takes(*, one):
        yield from ()
    for kwargs in ({"one": 1, "b": 2, "a": 3}, {"one": 1, "a": 3, "b": 2}):
        with pytest.raises(TypeError) as theirs:
            inspect.signature(takes).bind(**kwargs)
        with pytest.raises(TypeError) as ours:
            controller.ArgumentShapes(takes).bind(**kwargs)
        assert str(ours.value) == str(theirs.value)


def test_context_lookups_are_pyinfras(monkeypatch):
    from pyinfra.api import Host
    from pyinfra.context import ContextObject, host
    inventory, _ = inventory_and_state()
    monkeypatch.setattr(ContextObject, "__getattr__", ContextObject.__getattr__)
    original = ContextObject.__getattr__

    def looked_up(key):
        try:
            return getattr(host, key)
        except AttributeError as error:
            return f"AttributeError: {error}"
    values = []
    for install in (lambda: None, controller.faster_context):
        install()
        with ctx_host.use(inventory.get_host("two")):
            inside = [looked_up(key) for key in ("name", "groups", "data", "no_such_attribute")]
        values.append((inside, looked_up("get_fact"), looked_up("no_such_attribute")))
    assert ContextObject.__getattr__ is controller.context_value and original is not controller.context_value
    assert values[0] == values[1]
    assert values[1][0][0] == "two" and values[1][1] is Host.get_fact, "the host in the context, else its class"


def test_changes_so_far_counts_as_a_full_count_while_operations_complete_in_order():
    """managed.changes_so_far counts the leading complete operations once; the count stays the one a
    look at every operation gives (a contained operation's change left out)."""
    inventory, state = inventory_and_state()
    host = inventory.get_host("one")
    metas = {f"op{n}": OperationMeta(f"op{n}", is_change=None) for n in range(6)}
    state.ops[host] = {op_hash: SimpleNamespace(operation_meta=meta) for op_hash, meta in metas.items()}
    managed._declared.pop(host.name, None)

    def full_count():
        return sum(1 for op_hash, meta in metas.items() if op_hash not in managed.declared().contained
                   and meta.is_complete() and meta.did_change())
    with ctx_state.use(state), ctx_host.use(host):
        managed.declared().contained.add("op2")
        counts = [managed.changes_so_far()]
        for op_hash, changed in (("op0", True), ("op1", False), ("op2", True), ("op4", True), ("op3", True),
                                 ("op5", False)):
            metas[op_hash].set_complete(True, ["a command"] if changed else [], None)
            counts.append((managed.changes_so_far(), full_count()))
    assert counts == [0, (1, 1), (1, 1), (1, 1), (2, 2), (3, 3), (3, 3)]


def test_changes_so_far_looks_at_no_operation_after_the_one_running():
    """pyinfra runs a host's operations one after another: while one runs, none after it has run, and
    the count does not walk them (a run asks once per operation and host)."""
    inventory, state = inventory_and_state()
    host = inventory.get_host("one")
    metas = {f"op{n}": OperationMeta(f"op{n}", is_change=None) for n in range(4)}
    state.ops[host] = {op_hash: SimpleNamespace(operation_meta=meta) for op_hash, meta in metas.items()}
    managed._declared.pop(host.name, None)
    metas["op0"].set_complete(True, ["a command"], None)
    metas["op3"].set_complete(True, ["a command"], None)  # as if it had run: after the running one
    with ctx_state.use(state), ctx_host.use(host):
        host.executing_op_hash = "op1"
        assert managed.changes_so_far() == 1
        host.executing_op_hash = None  # asked outside a run: every operation looked at
        assert managed.changes_so_far() == 2


def rendered(template, values, host_name="one"):
    """managed.render of `template` (its text, written to a file) on the host `host_name`."""
    inventory, state = inventory_and_state()
    with ctx_state.use(state), ctx_host.use(inventory.get_host(host_name)):
        return managed.render(str(template), values)


def test_a_template_is_rendered_once_per_run_for_the_same_values_and_again_for_others(tmp_path):
    template = tmp_path / "program.conf.j2"
    template.write_text("command={{ command }} {{ size }}\n{% for name in names %}{{ name }};{% endfor %}\n")
    first = rendered(template, {"command": "Xvfb", "size": "1920x1080", "names": ["a", "b"]})
    assert first == b"command=Xvfb 1920x1080\na;b;\n"
    assert rendered(template, {"command": "Xvfb", "size": "1920x1080", "names": ["a", "b"]}, "two") is first
    assert rendered(template, {"command": "Xvfb", "size": "1280x720", "names": ["a", "b"]}) == \
        b"command=Xvfb 1280x720\na;b;\n"
    assert rendered(template, {"command": "Xvfb", "size": "1920x1080", "names": ("a", "b", "c")}) == \
        b"command=Xvfb 1920x1080\na;b;c;\n"
    assert rendered(template, {"command": "Xvfb", "size": 1920, "names": []}) == b"command=Xvfb 1920\n\n"


def test_a_template_that_reads_the_host_or_takes_in_another_is_rendered_for_each_host(tmp_path):
    (tmp_path / "part.j2").write_text("{{ host.name }}")
    for name, text in (("host.j2", "[{{ host.name }}] {{ word }}\n"), ("include.j2", "{% include 'part.j2' %}")):
        (tmp_path / name).write_text(text)
        assert not managed.rendered_once(str(tmp_path / name))
    assert rendered(tmp_path / "host.j2", {"word": "hi"}) == b"[one] hi\n"
    assert rendered(tmp_path / "host.j2", {"word": "hi"}, "two") == b"[two] hi\n"
    assert managed.rendered_once(str(tmp_path / "part.j2")) is False


def test_values_pickle_cannot_key_are_rendered_each_time(tmp_path):
    template = tmp_path / "call.j2"
    template.write_text("{{ make() }}\n")
    assert rendered(template, {"make": lambda: "first"}) == b"first\n"
    assert rendered(template, {"make": lambda: "second"}) == b"second\n"


def test_styled_texts_are_the_formatters_and_made_once():
    made = []

    def formatter(text, *args, **kwargs):
        made.append(text)
        return f"<{text}|{args}|{sorted(kwargs.items())}>"
    styled = controller.StyledTexts(formatter)
    asked = [("one", (), {"bold": True}), ("Success", ("green",), {}), ("one", (), {}), ("one", (), {"bold": True}),
             ("Success", ("green",), {})]
    texts = [styled(text, *args, **kwargs) for text, args, kwargs in asked]
    assert made == ["one", "Success", "one"], "made once per text and style"
    assert texts == [formatter(text, *args, **kwargs) for text, args, kwargs in asked]
    assert styled("list", fg=["unhashable"]) == formatter("list", fg=["unhashable"])


def test_faster_output_is_installed_once(monkeypatch):
    import logging

    from pyinfra.api import output
    monkeypatch.setattr(output, "_format_text", output._format_text)
    for flag in ("logThreads", "logProcesses", "logMultiprocessing", "_srcfile"):
        monkeypatch.setattr(logging, flag, getattr(logging, flag))
    original = output._format_text
    controller.faster_output()
    controller.faster_output()  # every host's deploy.py calls it
    assert isinstance(output._format_text, controller.StyledTexts) and output._format_text.formatter is original
    assert not (logging.logThreads or logging.logProcesses or logging.logMultiprocessing or logging._srcfile)


def test_debug_lines_still_name_their_caller(monkeypatch):
    import logging
    monkeypatch.setattr(logging, "_srcfile", logging._srcfile)
    source_file = logging._srcfile
    level = pyinfra.logger.level
    pyinfra.logger.setLevel(logging.DEBUG)  # pyinfra -vvv
    try:
        controller.faster_output()
    finally:
        pyinfra.logger.setLevel(level)
    assert logging._srcfile == source_file


@pytest.mark.parametrize("pair", [(b"a" * 32, b"a" * 32), (b"a" * 32, b"a" * 31 + b"b"), (b"abc", b"abcd"),
                                  (b"", b"")])
def test_a_packets_mac_compares_as_paramikos(monkeypatch, pair):
    import paramiko.util
    original = paramiko.util.constant_time_bytes_eq
    monkeypatch.setattr(paramiko.util, "constant_time_bytes_eq", original)
    controller.faster_packets()
    assert paramiko.util.constant_time_bytes_eq(*pair) == original(*pair)


def test_freeze_heap_leaves_what_exists_to_no_collection():
    import gc
    gc.unfreeze()
    before = gc.get_freeze_count()
    kept = [[] for _ in range(100)]
    try:
        controller.freeze_heap()
        assert gc.get_freeze_count() >= before + len(kept)
        collected = {id(each) for each in gc.get_objects()}  # every generation a collection walks
        assert not any(id(entry) in collected for entry in kept), "what existed is frozen"
        made_after = []
        assert any(each is made_after for each in gc.get_objects()), "what is new is collected as before"
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("value", [{"b": [1, 2.5, None], "a": {"z": True, "y": "é \"q\""}}, {"programs": ("x", "y")},
                                   {"n": 10 ** 30, "f": 0.1, "empty": {}}])
@pytest.mark.parametrize("indent", [1, 2])
def test_a_json_files_content_is_jsons_own_and_made_once_for_the_same_value(value, indent):
    import json
    expected = (json.dumps(value, indent=indent, sort_keys=True) + "\n").encode()
    assert managed.json_content(value, indent) == expected
    assert managed.json_content(json.loads(json.dumps(value)), indent) is managed.json_content(value, indent)


class GlobalRequestsSeen(paramiko.ServerInterface):
    """A server that lets anyone in (global requests come only after authentication) and notes them."""

    def __init__(self):
        self.kinds = []

    def get_allowed_auths(self, username):
        return "none"

    def check_auth_none(self, username):
        return paramiko.AUTH_SUCCESSFUL

    def check_global_request(self, kind, msg):
        self.kinds.append(kind)
        return False


def test_a_tuned_connection_still_sends_its_keepalives_and_ends_when_closed():
    """A tuned connection's reader looks once a second while idle, not ten times: a keepalive of a
    second (ssh's ServerAliveInterval=1) still reaches the server, and close() still ends the
    connection's reader. Over real loopback TCP to a paramiko server."""
    listener = socket.create_server(("127.0.0.1", 0))
    client = paramiko.Transport(socket.create_connection(listener.getsockname()))
    server = paramiko.Transport(listener.accept()[0])
    server.add_server_key(paramiko.ECDSAKey.generate())
    seen = GlobalRequestsSeen()
    serving = threading.Thread(target=server.start_server, kwargs={"server": seen})
    serving.start()
    try:
        client.start_client(timeout=10)
        client.auth_none("red")
        controller.tune_connection(client)
        assert client.sock.gettimeout() == controller.IDLE_CHECK
        assert client.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        client.set_keepalive(1)
        deadline = time.monotonic() + 10
        while "keepalive@lag.net" not in seen.kinds and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "keepalive@lag.net" in seen.kinds
        client.close()
        client.join(10)
        assert not client.is_alive()
    finally:
        client.close()
        server.close()
        serving.join(10)
        listener.close()


def fleet_of_fakes(names):
    from pyinfra.api.connect import connect_all
    state = State(Inventory((names, {})), Config())
    connect_all(state)
    return state


@pytest.mark.parametrize("parallel", [0, 1])
def test_a_host_whose_operation_waits_on_nothing_runs_it_in_place_and_the_others_as_pyinfra_runs_them(
        monkeypatch, parallel):
    """controller.run_single_op: a host IN_PLACE names runs its operation in the running greenlet, with
    pyinfra's results; the others run as pyinfra runs them: together (each starts before any ends), or
    one at a time with _parallel=1."""
    import gevent
    from pyinfra import host
    from pyinfra.api import FunctionCommand, operation, operations
    from pyinfra.api.operation import add_op
    from pyinfra.api.operations import run_ops

    events, running = [], gevent.getcurrent()

    def waits(state, host):
        events.append(("start", host.name))
        gevent.sleep(0.05)
        events.append(("end", host.name))
        return True

    @operation()
    def step():
        events.append(("runs", host.name, gevent.getcurrent() is running))
        if host.name != "@fake/quiet":
            yield FunctionCommand(waits, (), {})

    results, orders = {}, {}
    for in_place in ([], [lambda state, target, op_hash: target.name == "@fake/quiet"]):
        monkeypatch.setattr(controller, "IN_PLACE", in_place)
        monkeypatch.setattr(operations, "_run_single_op", controller.run_single_op if in_place else
                            controller.RUN_SINGLE_OP)
        state = fleet_of_fakes(["@fake/quiet", "@fake/b", "@fake/c"])
        with ctx_state.use(state):
            add_op(state, step, **({"_parallel": parallel} if parallel else {}))
            events.clear()  # what declaring it ran
            run_ops(state)
        results[bool(in_place)] = {target.name: (vars(state.get_results_for_host(target)),
                                                 [op.operation_meta.did_change() for op in state.ops[target].values()])
                                   for target in state.inventory}
        orders[bool(in_place)] = [event for event in events if event[0] in ("start", "end")]
    assert results[True] == results[False]
    assert results[True]["@fake/quiet"][1] == [False] and results[True]["@fake/b"][1] == [True]
    assert ("runs", "@fake/quiet", True) in events, "in the running greenlet"
    assert ("runs", "@fake/b", False) in events and ("runs", "@fake/c", False) in events
    for order in orders.values():
        assert sorted(order) == [("end", "@fake/b"), ("end", "@fake/c"), ("start", "@fake/b"), ("start", "@fake/c")]
        if parallel:
            assert order[0][1] == order[1][1] and order[2][1] == order[3][1], "one at a time"
        else:
            assert {order[0][0], order[1][0]} == {"start"}, "together"


def test_an_operation_runs_in_place_only_when_its_check_finds_nothing_to_do_in_the_snapshot_in_hand():
    """managed.finds_nothing_to_do: a checked operation whose item the snapshot in hand shows as
    declared, nothing having changed since it was taken but earlier operations' own items; not when
    its item differs, when an earlier operation changed something beyond its own item (the snapshot is
    then taken again), when two steps share the operation, for another operation, or with the
    snapshot setting off."""
    inventory, state = inventory_and_state()
    target = inventory.get_host("one")
    metas = {f"op{n}": OperationMeta(f"op{n}", is_change=None) for n in range(5)}
    state.ops[target] = {op_hash: SimpleNamespace(operation_meta=meta) for op_hash, meta in metas.items()}
    managed._declared.pop(target.name, None)
    verdicts = []
    with ctx_state.use(state), ctx_host.use(target):
        record = managed.declared()
        record.paths.add("/etc")
        record.snapshot = {"paths": {"/etc": ("directory", 755, "root", "root")}}
        record.taken = (record.request()[1], 0)
        for op_hash, mode in (("op2", 755), ("op3", 700), ("op4", 755), ("op4", 755)):
            step = managed.Step(lambda seen, mode=mode: seen["paths"]["/etc"][1] == mode)
            record.hashed(step, op_hash)
        target.data.snapshot = True
        verdicts += [managed.finds_nothing_to_do(state, target, op_hash) for op_hash in ("op0", "op2", "op3", "op4")]
        target.data.snapshot = False
        verdicts.append(managed.finds_nothing_to_do(state, target, "op2"))
        target.data.snapshot = True
        record.contained.add("op0")  # as its check marks it, before it runs
        metas["op0"].set_complete(True, ["a command"], None)  # a change of its own item only
        verdicts.append(managed.finds_nothing_to_do(state, target, "op2"))
        metas["op1"].set_complete(True, ["a command"], None)  # a change beyond its own item
        verdicts.append(managed.finds_nothing_to_do(state, target, "op2"))
    assert verdicts == [False, True, False, False, False, True, False]
