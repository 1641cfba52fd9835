"""Red's doctor, from the controller: red-doctor on every host, one table. Changes nothing.

    pyinfra inventory.py doctor.py

A row per host, a column per check (ok, warn, FAIL), and the failing checks' lines below it; the
table goes where pyinfra's own output goes (standard error).
"""
import click
from pyinfra import host, inventory

from tasks.diagnostics import DOCTOR, collect
from tasks.facts import DoctorReport

found = collect(host.name, host.get_fact(DoctorReport, doctor=DOCTOR),
                [active.name for active in inventory.get_active_hosts()])
if found:
    click.echo(f"\n{found}\n", err=True)
