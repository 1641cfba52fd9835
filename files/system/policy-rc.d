#!/bin/sh
# Managed by Red: services are run by supervisor, never by package installs.
exit 101
