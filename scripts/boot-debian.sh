#!/usr/bin/env bash
# Build nspawn-rs and boot a Debian 12 container with it:
#
#   sudo scripts/boot-debian.sh [extra nspawn options...]
#
# Needs only this checkout and a Rust toolchain; installs debootstrap and
# busybox-static (and npm, for the Cockpit page, where Cockpit is) with apt
# if missing, builds a cached Debian tree
# (scripts/fixtures.sh) and copies it to /var/lib/machines/debian12.
set -euo pipefail

die() { printf 'boot-debian.sh: error: %s\n' "$*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "must be run as root (try: sudo $0)"

if ! command -v cargo >/dev/null; then
    # sudo usually drops ~/.cargo/bin from PATH.
    for c in "${HOME:-/root}/.cargo/bin" "/home/${SUDO_USER:-}/.cargo/bin"; do
        if [[ -x $c/cargo ]]; then PATH=$c:$PATH; break; fi
    done
fi
command -v cargo >/dev/null || die "cargo not found: install a Rust toolchain (rustup) and put cargo on PATH"

cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
# gcc and libc6-dev: rustc links through cc, and nspawn-inner (the static
# program that runs inside machines) against glibc's static libraries.
for pkg in debootstrap busybox-static gcc libc6-dev; do
    dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$' ||
        missing+=("$pkg")
done
# The Cockpit page's PatternFly and xterm.js come through npm (asked for
# by command: a nodejs from elsewhere than Debian brings its own).
if [[ -d /usr/share/cockpit ]] && ! command -v npm >/dev/null; then missing+=(npm); fi
if ((${#missing[@]})); then
    command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get to install them"
    echo "boot-debian.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cargo build --release
# The binaries, the service template, shell completions (bash, zsh, fish)
# and nspawn(1), generated from the same definitions.
install -m 0755 target/release/nspawn target/release/nspawnctl target/release/nspawn-oci /usr/local/bin/
# The OCI runtime for podman (`podman --runtime nspawn-oci`, with --log
# passed to it) and the runc shim's configuration for containerd (merge by hand).
install -D -m 0644 dist/containers.conf.d/nspawn-oci.conf /etc/containers/containers.conf.d/nspawn-oci.conf
install -D -m 0644 dist/containerd/nspawn-oci.toml /usr/local/share/nspawn-rs/containerd/nspawn-oci.toml
install -D -m 0644 units/nspawn@.service /etc/systemd/system/nspawn@.service
# The NSS module; add "nspawn" to the hosts line of /etc/nsswitch.conf to use it.
install -m 0644 target/release/libnss_nspawn.so "/usr/lib/$(uname -m)-linux-gnu/libnss_nspawn.so.2"
target/release/nspawn-gen /usr/local/share
# The Cockpit page, where Cockpit is installed.
if [[ -d /usr/share/cockpit ]]; then scripts/install-cockpit; fi
scripts/fixtures.sh debian-machine debian12 >/dev/null
exec target/release/nspawn -b -D /var/lib/machines/debian12 "$@"
