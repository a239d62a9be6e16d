#!/usr/bin/env bash
# Builds the base image every Tollgate container starts from, with no registry: a Debian root
# filesystem made by mmdebstrap from Debian's own packages, imported into podman.
#   usage: images/build-base.sh IMAGE SUITE [MIRROR]
# What is in it: Debian minbase + nodejs (>= 20) + python3 (the full standard library: stdio MCP
# servers from PyPI need asyncio, ssl, http) + ca-certificates, two unprivileged
# users (tollgate 65532, envoy 101: the UIDs `tollgate inject` runs its sidecars as), no docs,
# man pages or locales. It does nothing when IMAGE already exists (the tag carries the recipe's
# revision, see images/images.env), so a second run costs one `podman image exists`.
set -euo pipefail
image=${1:?usage: build-base.sh IMAGE SUITE [MIRROR]}
suite=${2:?usage: build-base.sh IMAGE SUITE [MIRROR]}
mirror=${3:-http://deb.debian.org/debian}

if podman image exists "$image"; then
  echo "base image $image: already built"
  exit 0
fi
for tool in mmdebstrap podman; do
  command -v "$tool" >/dev/null || { echo "build-base.sh: $tool is missing; run make podman" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "base image $image: mmdebstrap $suite from $mirror"
mmdebstrap --quiet --variant=minbase \
  --include=nodejs,python3,ca-certificates \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --customize-hook='chroot "$1" groupadd --gid 65532 tollgate' \
  --customize-hook='chroot "$1" useradd --no-log-init --uid 65532 --gid 65532 --home-dir /home/tollgate --create-home --shell /usr/sbin/nologin tollgate' \
  --customize-hook='chroot "$1" groupadd --system --gid 101 envoy' \
  --customize-hook='chroot "$1" useradd --system --uid 101 --gid 101 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin envoy' \
  --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*.log' \
  "$suite" "$work/rootfs.tar" "$mirror"

podman import --quiet \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV NODE_ENV=production' \
  --change 'WORKDIR /home/tollgate' \
  --change 'USER 65532:65532' \
  --change 'CMD ["/bin/bash"]' \
  --change "LABEL org.opencontainers.image.title=tollgate-base" \
  --change "LABEL org.opencontainers.image.description=\"Debian $suite minbase with Node.js and Python 3\"" \
  --change "LABEL org.opencontainers.image.licenses=Apache-2.0" \
  --message "mmdebstrap $suite (minbase, nodejs, python3, ca-certificates)" \
  "$work/rootfs.tar" "$image" >/dev/null
echo "base image $image: built ($(podman image inspect --format '{{.Size}}' "$image") bytes)"
podman run --rm "$image" sh -c 'python3 -c "import asyncio, ssl, http.client" && echo "  node $(node --version), $(python3 --version) with its standard library, user $(id -un)"'
