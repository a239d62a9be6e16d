#!/usr/bin/env bash
# Makes podman usable for this project: installs podman, runc, mmdebstrap and catatonit (pods'
# infra containers) with apt-get when
# any is missing (once; later runs only check), writes the project's containers.conf to CONF,
# and checks that podman answers with that configuration.
#   usage: images/ensure-podman.sh CONF
# Exit 0: ready. Exit 3: podman cannot run on this machine (the message says why); the pod tests
# skip with that message. Any other failure is a bug and exits 1.
set -euo pipefail
conf=${1:?usage: ensure-podman.sh CONF}
here=$(cd "$(dirname "$0")" && pwd)

missing=()
for tool in podman runc mmdebstrap catatonit; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "podman: ${missing[*]} missing and no apt-get to install them; install podman, runc and mmdebstrap" >&2
    exit 3
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "podman: ${missing[*]} missing; run as root (the images are built by rootful podman) or install them" >&2
    exit 3
  fi
  echo "podman: installing ${missing[*]} with apt-get"
  # Waits for another apt on the machine instead of failing; `update` only when the install can't
  # find the packages.
  install() { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends podman runc mmdebstrap catatonit >/dev/null; }
  install || { apt-get -o DPkg::Lock::Timeout=300 update -qq && install; } || { echo "podman: apt-get could not install podman runc mmdebstrap catatonit" >&2; exit 3; }
fi

mkdir -p "$(dirname "$conf")"
"$here/podman-conf.sh" > "$conf.tmp"
if cmp -s "$conf.tmp" "$conf"; then rm -f "$conf.tmp"; else mv "$conf.tmp" "$conf"; fi
if [ "$(id -u)" != 0 ]; then
  echo "podman: not root; Tollgate's images and pod tests use rootful podman" >&2
  exit 3
fi
if ! out=$(CONTAINERS_CONF=$conf podman info --format '{{.Host.OCIRuntime.Name}}' 2>&1); then
  echo "podman: \`podman info\` fails here: $out" >&2
  exit 3
fi
# podman hands each container and pod a numbered lock in shared memory. When that table and
# podman's database disagree (a podman client killed mid-operation, /dev/shm reset while
# /var/lib/containers survived, as on a restored VM), two objects share one lock and `podman kube
# play` deadlocks on itself, for ever. Reassigning the numbers is podman's own repair; it must
# run with no container running, so it only runs then.
if [ -z "$(CONTAINERS_CONF=$conf podman ps -q 2>/dev/null)" ]; then
  CONTAINERS_CONF=$conf podman system renumber >/dev/null 2>&1 || echo "podman: \`podman system renumber\` failed; a stuck \`kube play\` may follow" >&2
fi
echo "podman: ready ($(podman --version), runtime $out, CONTAINERS_CONF=$conf)"
