#!/usr/bin/env bash
# Puts Debian's mbedTLS 2.28 source tree (the same release as the host's libmbedtls-dev) at
# $1 (default build/third_party/mbedtls) for the Cortex-M cross-build. Debian's binary packages are x86
# only, so the library is compiled from source. The source comes from Debian's own archive through
# `apt-get source`, with a private apt configuration (a deb-src entry in a temporary directory), so the
# system's apt sources are left untouched. apt checks the files against the signed Sources index.
# Idempotent: does nothing when the tree is already there.
set -euo pipefail

dest=${1:-build/third_party/mbedtls}
if [[ -f "$dest/library/ecdsa.c" && -f "$dest/include/mbedtls/version.h" ]]; then
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/parts" "$work/lists/partial" "$work/dl"
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
cat > "$work/parts/src.sources" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
apt_opts=(-o "Dir::Etc::sourcelist=/dev/null" -o "Dir::Etc::sourceparts=$work/parts"
          -o "Dir::State::Lists=$work/lists" -o "APT::Sandbox::User=root")
echo "== fetching mbedTLS source from Debian ($suite) for the Cortex-M build" >&2
apt-get "${apt_opts[@]}" -qq update >&2
(cd "$work/dl" && apt-get "${apt_opts[@]}" -qq source --download-only mbedtls >&2)
orig=$(ls "$work"/dl/mbedtls_*.orig.tar.* | head -n1)
mkdir -p "$work/tree"
tar -xf "$orig" -C "$work/tree" --strip-components=1
grep -q 'MBEDTLS_VERSION_STRING *"2\.28\.' "$work/tree/include/mbedtls/version.h" || {
  echo "fetch-mbedtls: expected mbedTLS 2.28.x, got: $(grep 'MBEDTLS_VERSION_STRING ' "$work/tree/include/mbedtls/version.h")" >&2
  exit 1
}
mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
mv "$work/tree" "$dest"
echo "== mbedTLS $(grep -o '"2\.28\.[0-9]*"' "$dest/include/mbedtls/version.h" | head -n1) in $dest" >&2
