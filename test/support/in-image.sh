#!/bin/bash
# Plays one container of a fake ACI group inside its image (tests of the aci executor): `buildah from` the image the
# group names, the group's volumes bind-mounted where the container mounts them, the container's environment (a
# NUL-separated file, REFIT_FAKE_ENV_FILE) set, its command run with chroot isolation. The exit code is the command's;
# 125 when the image could not be had (as a runtime says).
# Usage: in-image.sh IMAGE [HOST_DIR:MOUNT_PATH ...] -- COMMAND...
set -u
image=$1
shift
mounts=()
while [ "$#" -gt 0 ] && [ "$1" != -- ]; do mounts+=(--volume "$1"); shift; done
shift
storage=(--storage-driver vfs)
tls=()
case "$image" in localhost:* | 127.0.0.1:*) tls=(--tls-verify=false) ;; esac
container=$(buildah "${storage[@]}" from --quiet --pull=missing "${tls[@]}" "$image") || exit 125
trap 'buildah "${storage[@]}" rm "$container" > /dev/null 2>&1' EXIT
envs=()
while IFS= read -r -d '' kv; do envs+=(--env "$kv"); done < "$REFIT_FAKE_ENV_FILE"
buildah "${storage[@]}" run --isolation chroot "${envs[@]}" "${mounts[@]}" "$container" -- "$@"
