#!/bin/sh
# Docker mounts a container's cgroups read-only unless it is privileged, and --privileged
# fails on hosts that do not grant every capability (cap_sys_resource, here). With
# CAP_SYS_ADMIN the node can make them writable itself, for its own containers.
set -eu
for hierarchy in /sys/fs/cgroup/*/; do
    mount -o remount,bind,rw "$hierarchy"
done
exec dockerd "$@"
