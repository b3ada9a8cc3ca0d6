#!/usr/bin/env bash
# Builds a local stand-in for the public base image node:20-bookworm-slim, under that exact name,
# for machines that cannot pull it (no registry reachable). The Dockerfile names the real image
# and builds unchanged on either.
#
# The stand-in: a minimal Debian bookworm (debootstrap --variant=minbase, from the Debian mirror
# this machine's apt already uses, read at run time), this machine's node and npm under
# /usr/local as in the real image, and its `node` user (uid 1000). This machine's CA bundle goes in
# too (NODE_EXTRA_CA_CERTS), as its node and npm do: where the npm registry is reached through a
# TLS-inspecting proxy, `npm ci` in a build trusts what the machine trusts. The stand-in is a
# local artifact, never pushed. Imported with `podman import`
# (or `docker import`). About a minute; reused when present (pass --force to rebuild).
#
# Needs root (debootstrap), debootstrap and the Debian archive keyring: apt-get install -y debootstrap.
set -euo pipefail

NAME=${BASE_IMAGE:-docker.io/library/node:20-bookworm-slim}
ENGINE=${CONTAINER_ENGINE:-$(command -v podman >/dev/null && echo podman || echo docker)}
force=${1:-}

if [ "$force" != --force ] && $ENGINE image inspect "$NAME" >/dev/null 2>&1; then
  echo "base image $NAME present; reusing it (--force rebuilds)"
  exit 0
fi

# The first http(s) mirror serving bookworm itself (not -security or -updates), from the deb822
# sources or the one-line format. DEBIAN_MIRROR overrides.
debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local files=(/etc/apt/sources.list.d/*.sources) m=''
  [ -e "${files[0]}" ] && m=$(awk '
    /^[[:space:]]*$/ { u = "" }
    /^URIs:/ { u = $2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm" && u != "") { print u; exit } }
  ' "${files[@]}")
  if [ -z "$m" ]; then
    m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '
      $1 == "deb" { for (i = 2; i < NF; i++) if ($i ~ /^https?:\/\// && $(i + 1) == "bookworm") { print $i; exit } }')
  fi
  echo "$m"
}

for tool in debootstrap "$ENGINE" node; do
  command -v "$tool" >/dev/null || { echo "base-image: $tool is not installed (apt-get install -y debootstrap podman runc)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "base-image: debootstrap needs root" >&2; exit 1; }
mirror=$(debian_mirror)
[ -n "$mirror" ] || { echo "base-image: no Debian bookworm mirror in /etc/apt/sources.list*; set DEBIAN_MIRROR" >&2; exit 1; }

node_bin=$(readlink -f "$(command -v node)")
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
node_version=$("$node_bin" --version)
case "$node_version" in v20.*) ;; *) echo "base-image: this machine's node is $node_version; the stand-in for $NAME needs Node 20" >&2; exit 1 ;; esac

started=$(date +%s)
root=$(mktemp -d /var/tmp/warren-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "debootstrap bookworm (minbase) into $root"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || { tail -30 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"

install -D -m 0755 "$node_bin" "$root/usr/local/bin/node"
mkdir -p "$root/usr/local/lib/node_modules"
cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
ca_bundle=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
ca_env=()
if [ -s "$ca_bundle" ]; then
  install -D -m 0644 "$ca_bundle" "$root/etc/ssl/certs/ca-certificates.crt"
  ca_env=(--change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt')
fi
chroot "$root" groupadd --gid 1000 node
chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
# As in the real slim image: no package lists (a Dockerfile runs apt-get update first), no caches.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log

tar -C "$root" -c . | $ENGINE import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=${node_version#v}" \
  "${ca_env[@]}" \
  --change 'CMD ["node"]' \
  - "$NAME" >/dev/null
echo "built stand-in $NAME (node $node_version, Debian bookworm from the machine's mirror) in $(($(date +%s) - started)) s"
