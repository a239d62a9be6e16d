#!/usr/bin/env bash
# Builds the tollgate image (every `tollgate` command) and the tollgate-envoy image FROM the base
# image, with podman and no registry. Each image carries a label with a hash of what went into
# it; when that hash is unchanged the build is skipped, so a second `make images` is quick.
#   usage: images/build-app.sh BASE_IMAGE TOLLGATE_IMAGE ENVOY_IMAGE
# Run from the repository root after `make build`; TOOLS_BIN points at opa, nats-server, envoy.
set -euo pipefail
base=${1:?usage: build-app.sh BASE_IMAGE TOLLGATE_IMAGE ENVOY_IMAGE}
app_image=${2:?}
envoy_image=${3:?}
bin=${TOOLS_BIN:-.tools/bin}
stage=${IMAGES_STAGE:-.tools/images}
here=$(cd "$(dirname "$0")" && pwd)
label=dev.tollgate.inputs

[ -f dist/src/cli/main.js ] || { echo "build-app.sh: dist/src is missing; run make build first" >&2; exit 1; }
podman image exists "$base" || { echo "build-app.sh: base image $base is missing; run make base-image" >&2; exit 1; }

current_label() {
  podman image inspect --format "{{index .Labels \"$label\"}}" "$1" 2>/dev/null || true
}

# Production node_modules, staged once per lock file: a copy of the dev tree pruned by npm (no
# registry round trip), hard-linked into the build context afterwards.
lockhash=$(cat package.json package-lock.json | sha256sum | cut -c1-16)
prod=$stage/node_modules-$lockhash
if [ ! -d "$prod/node_modules" ]; then
  echo "tollgate image: staging production node_modules ($lockhash)"
  rm -rf "$prod.tmp" && mkdir -p "$prod.tmp"
  cp package.json package-lock.json "$prod.tmp/"
  cp -a node_modules "$prod.tmp/"
  rm -f "$prod.tmp/node_modules/.installed"*
  (cd "$prod.tmp" && npm prune --omit=dev --no-audit --no-fund --ignore-scripts >/dev/null)
  rm -f "$prod.tmp/node_modules/.bin/tollgate"
  # Type declarations, source maps and docs are never loaded at run time.
  find "$prod.tmp/node_modules" -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \
    -o -iname 'readme*' -o -iname 'changelog*' -o -iname 'history.md' \) -delete
  find "$stage" -maxdepth 1 -name 'node_modules-*' ! -name "node_modules-$lockhash*" -exec rm -rf {} +
  mv "$prod.tmp" "$prod"
fi

# --- tollgate ---------------------------------------------------------------------------------
app_hash=$(
  {
    echo "base $base lock $lockhash"
    sha256sum "$0" "$here/tollgate.Containerfile" "$bin/opa" "$bin/nats-server"
    find dist/src policies -type f ! -name '*.map' -print0 | sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-32)
if [ "$(current_label "$app_image")" = "$app_hash" ]; then
  echo "tollgate image $app_image: up to date"
else
  ctx=$stage/tollgate-context
  rm -rf "$ctx" && mkdir -p "$ctx/rootfs/opt/tollgate/dist" "$ctx/rootfs/usr/local/bin"
  cp package.json "$ctx/rootfs/opt/tollgate/"
  [ -f LICENSE ] && cp LICENSE "$ctx/rootfs/opt/tollgate/"
  cp -al "$prod/node_modules" "$ctx/rootfs/opt/tollgate/node_modules"
  cp -r dist/src "$ctx/rootfs/opt/tollgate/dist/src"
  find "$ctx/rootfs/opt/tollgate/dist" -name '*.map' -delete
  cp -r policies "$ctx/rootfs/opt/tollgate/policies"
  cp -L "$bin/opa" "$bin/nats-server" "$ctx/rootfs/usr/local/bin/"
  ln -s /opt/tollgate/dist/src/cli/main.js "$ctx/rootfs/usr/local/bin/tollgate"
  chmod -R a+rX,go-w "$ctx/rootfs"
  echo "tollgate image $app_image: building"
  old=$(podman image inspect --format '{{.Id}}' "$app_image" 2>/dev/null || true)
  podman build --quiet --pull=never --build-arg "BASE=$base" --label "$label=$app_hash" \
    --label org.opencontainers.image.title=tollgate --label org.opencontainers.image.licenses=Apache-2.0 \
    -f "$here/tollgate.Containerfile" -t "$app_image" "$ctx" >/dev/null
  rm -rf "$ctx"
  # The previous build lost its tag; drop it unless a container still uses it.
  [ -n "$old" ] && podman rmi "$old" >/dev/null 2>&1 || true
fi

# --- tollgate-envoy ---------------------------------------------------------------------------
envoy_hash=$({ echo "base $base"; sha256sum "$0" "$here/envoy.Containerfile"; sha256sum -b < "$(readlink -f "$bin/envoy")"; } | sha256sum | cut -c1-32)
if [ "$(current_label "$envoy_image")" = "$envoy_hash" ]; then
  echo "envoy image $envoy_image: up to date"
else
  ctx=$stage/envoy-context
  rm -rf "$ctx" && mkdir -p "$ctx/rootfs/usr/local/bin"
  cp -L "$bin/envoy" "$ctx/rootfs/usr/local/bin/envoy"
  chmod 755 "$ctx/rootfs/usr/local/bin/envoy"
  echo "envoy image $envoy_image: building"
  old=$(podman image inspect --format '{{.Id}}' "$envoy_image" 2>/dev/null || true)
  podman build --quiet --pull=never --build-arg "BASE=$base" --label "$label=$envoy_hash" \
    --label org.opencontainers.image.title=tollgate-envoy \
    -f "$here/envoy.Containerfile" -t "$envoy_image" "$ctx" >/dev/null
  rm -rf "$ctx"
  [ -n "$old" ] && podman rmi "$old" >/dev/null 2>&1 || true
fi

podman images --format '  {{.Repository}}:{{.Tag}}  {{.Size}}' | grep -F -e "$base" -e "$app_image" -e "$envoy_image" || true
