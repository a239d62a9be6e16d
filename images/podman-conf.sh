#!/usr/bin/env bash
# Prints the containers.conf that every podman call of this project uses (CONTAINERS_CONF).
# Why each setting: crun fails on hosts with hybrid cgroups (v1 controllers + a v2 mount), runc
# works; podman's default ulimits ask for more open files and processes than an unprivileged
# sandbox may set, so containers would not start: cap them at this shell's hard limits (and
# NPROC at 32768, above which runc's setrlimit is refused even when the hard limit is higher).
set -euo pipefail
nofile=$(ulimit -Hn)
nproc=$(ulimit -Hu)
[ "$nofile" = unlimited ] && nofile=1048576
[ "$nproc" = unlimited ] && nproc=32768
[ "$nofile" -gt 1048576 ] && nofile=1048576
[ "$nproc" -gt 32768 ] && nproc=32768
cat <<CONF
# Written by images/podman-conf.sh (make podman); do not edit, run make podman again.
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
