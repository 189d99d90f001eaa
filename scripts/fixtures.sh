#!/usr/bin/env bash
# Test fixtures for nspawn-rs.
#
#   scripts/fixtures.sh busybox DIR          minimal busybox tree at DIR
#   scripts/fixtures.sh debian               cached Debian 12 tree with systemd
#                                            (path printed as the last line)
#   scripts/fixtures.sh debian-machine NAME  copy of the cached tree to
#                                            /var/lib/machines/NAME
set -euo pipefail
shopt -s inherit_errexit

prog=${0##*/}
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }
log() { printf '%s: %s\n' "$prog" "$*" >&2; }

usage() {
    cat >&2 <<USAGE
usage: $prog busybox DIR
       $prog debian
       $prog debian-machine NAME
USAGE
    exit 2
}

# ---------------------------------------------------------------------------
# busybox
# ---------------------------------------------------------------------------

BUSYBOX_MARKER=etc/.nspawn-rs-busybox-fixture

fixture_busybox() {
    local dir=$1 bb
    for bb in /bin/busybox /usr/bin/busybox; do
        [[ -x $bb ]] && break
    done
    [[ -x $bb ]] || die "busybox not found (apt-get install busybox-static)"
    # A dynamically linked busybox would not run inside the tree.
    if command -v file >/dev/null &&
       ! LC_ALL=C file -L "$bb" | grep -q 'statically linked'; then
        die "$bb is not statically linked (install busybox-static)"
    fi

    if [[ -e $dir || -L $dir ]]; then
        [[ -d $dir && ! -L $dir ]] || die "$dir exists and is not a directory"
        if [[ -e $dir/$BUSYBOX_MARKER ]]; then
            rm -rf --one-file-system -- "$dir"
        elif [[ -n $(ls -A -- "$dir") ]]; then
            die "$dir exists, is not empty and was not made by $prog; refusing"
        fi
    fi

    mkdir -p -- "$dir"
    cd -- "$dir"
    mkdir -p usr/bin usr/lib etc proc sys dev run tmp var/tmp root home/tester
    chmod 1777 tmp var/tmp
    chmod 0700 root
    ln -s usr/bin bin
    ln -s usr/bin sbin
    ln -s usr/lib lib
    ln -s bin usr/sbin
    cp -- "$bb" usr/bin/busybox
    chmod 0755 usr/bin/busybox
    # One process for all ~270 applet links instead of one `ln` each.
    usr/bin/busybox --list |
        perl -e 'chomp, $_ ne "busybox" && (symlink("busybox", "usr/bin/$_") || die "usr/bin/$_: $!\n") while <STDIN>'

    cat > etc/passwd <<'P'
root:x:0:0:root:/root:/bin/sh
tester:x:1000:1000:tester:/home/tester:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
    cat > etc/group <<'G'
root:x:0:
tty:x:5:
users:x:100:
tester:x:1000:
extra:x:1001:tester
nogroup:x:65534:
G
    cat > etc/os-release <<'O'
ID=busybox
NAME="BusyBox test tree"
PRETTY_NAME="BusyBox test tree (nspawn-rs fixture)"
VERSION_ID=1
O
    # busybox has no getent applet; systemd-nspawn --user= runs `getent
    # passwd USER` and `getent initgroups USER` inside the container.
    cat > usr/bin/getent <<'GETENT'
#!/bin/sh
# Minimal getent(1) for the busybox fixture: passwd, group, initgroups.
db=$1; shift
case $db in
    passwd|group) file=/etc/$db ;;
    initgroups) ;;
    *) echo "getent: unsupported database: $db" >&2; exit 1 ;;
esac
if [ "$db" = initgroups ]; then
    [ $# -eq 1 ] || exit 1
    line=$(awk -F: -v k="$1" '$1 == k || $3 == k { print; exit }' /etc/passwd)
    [ -n "$line" ] || exit 2
    exec awk -F: -v u="${line%%:*}" -v g="$(echo "$line" | cut -d: -f4)" '
        { n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u && $3 != g) s = s " " $3 }
        END { print u " " g s }' /etc/group
fi
if [ $# -eq 0 ]; then exec cat "$file"; fi
rc=0
for k in "$@"; do
    awk -F: -v k="$k" '$1 == k || $3 == k { print; f = 1; exit } END { exit !f }' "$file" || rc=2
done
exit $rc
GETENT
    chmod 0755 usr/bin/getent
    chown 1000:1000 home/tester
    : > "$BUSYBOX_MARKER"
}

# ---------------------------------------------------------------------------
# debian
# ---------------------------------------------------------------------------

CACHE_DIR=/var/cache/nspawn-rs
DEBIAN_TREE=$CACHE_DIR/debian12
DEBIAN_STAMP=$CACHE_DIR/debian12.stamp
# Bump whenever the recipe below changes: cached trees with another stamp
# are rebuilt.
DEBIAN_VERSION=debian12-recipe-3
DEBIAN_SUITE=bookworm
DEBIAN_INCLUDE=systemd,systemd-sysv,dbus,iproute2,systemd-container

# Print the mirror URI of the apt entry that carries $DEBIAN_SUITE.
apt_mirror() {
    local f uri
    shopt -s nullglob
    for f in /etc/apt/sources.list.d/*.sources; do
        uri=$(awk -v suite="$DEBIAN_SUITE" '
            function flush() {
                if (enabled && isdeb && hassuite && uri != "" && !found) {
                    print uri; found = 1
                }
                enabled = 1; isdeb = 0; hassuite = 0; uri = ""
            }
            BEGIN { enabled = 1 }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            {
                line = $0
                key = tolower(line); sub(/:.*/, "", key)
                val = line; sub(/^[^:]*:[ \t]*/, "", val)
                n = split(val, w, /[ \t]+/)
                if (key == "types") {
                    for (i = 1; i <= n; i++) if (w[i] == "deb") isdeb = 1
                } else if (key == "suites") {
                    for (i = 1; i <= n; i++) if (w[i] == suite) hassuite = 1
                } else if (key == "uris") {
                    for (i = 1; i <= n; i++)
                        if (w[i] ~ /^https?:\/\//) { uri = w[i]; break }
                } else if (key == "enabled") {
                    if (tolower(w[1]) == "no") enabled = 0
                }
            }
            END { flush() }' "$f")
        if [[ -n $uri ]]; then
            printf '%s\n' "$uri"
            return 0
        fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r $f ]] || continue
        uri=$(awk -v suite="$DEBIAN_SUITE" '
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) == suite && $i ~ /^https?:\/\//) { print $i; exit }
            }' "$f")
        if [[ -n $uri ]]; then
            printf '%s\n' "$uri"
            return 0
        fi
    done
    return 1
}

# Unmount everything at or below $1 (deepest first), then remove it.
remove_tree() {
    local dir=$1 m
    [[ -e $dir ]] || return 0
    while read -r m; do
        umount -l -- "$m" 2>/dev/null || true
    done < <(findmnt -rn -o TARGET | awk -v d="$dir" 'index($0, d "/") == 1 || $0 == d' | sort -r)
    rm -rf --one-file-system -- "$dir"
}

debian_is_current() {
    [[ -d $DEBIAN_TREE/usr/lib/systemd && -f $DEBIAN_STAMP ]] &&
        [[ $(head -n1 "$DEBIAN_STAMP") == "$DEBIAN_VERSION" ]]
}

# Post-debootstrap adjustments, run against the not-yet-published tree.
debian_customize() {
    local root=$1

    # Root logs in on the console with an empty password. Debian's
    # /etc/pam.d/common-auth uses pam_unix.so nullok, so that is accepted.
    chroot "$root" /usr/bin/passwd -d root >/dev/null
    grep -q 'pam_unix\.so.*nullok' "$root/etc/pam.d/common-auth" ||
        die "debian tree: common-auth lacks nullok, empty root password would not work"

    # Every container gets its own hostname (the machine name) and machine
    # id. An *empty* /etc/machine-id (rather than none) means "not first
    # boot": systemd initializes it from the container UUID without running
    # systemd-firstboot, which would otherwise prompt on the console.
    rm -f "$root/etc/hostname" "$root/var/lib/dbus/machine-id"
    : > "$root/etc/machine-id"
    chmod 0444 "$root/etc/machine-id"

    # Nothing to mount: the container manager provides the file systems.
    printf '# empty: file systems are set up by the container manager\n' > "$root/etc/fstab"

    # Minimal, sane defaults.
    printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
    : > "$root/etc/resolv.conf"

    # Keep the image small: no apt lists or downloaded debs.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    rm -f "$root"/var/log/*.log "$root"/var/log/apt/* 2>/dev/null || true
}

fixture_debian() {
    [[ $EUID -eq 0 ]] || die "building the Debian tree needs root"
    command -v debootstrap >/dev/null || die "debootstrap not found (apt-get install debootstrap)"
    mkdir -p "$CACHE_DIR"

    # Serialize concurrent callers (parallel tests).
    exec 9>"$CACHE_DIR/.debian12.lock"
    flock 9

    if debian_is_current; then
        printf '%s\n' "$DEBIAN_TREE"
        return 0
    fi

    # Leftovers of interrupted builds.
    local old
    for old in "$CACHE_DIR"/.debian12.tmp.* "$CACHE_DIR"/.debian12.old.*; do
        [[ -e $old ]] && remove_tree "$old"
    done

    local mirror
    mirror=$(apt_mirror) || die "no apt entry for suite '$DEBIAN_SUITE' found in /etc/apt/sources.list{,.d/*.sources}"
    log "building Debian $DEBIAN_SUITE tree from $mirror (this takes a few minutes)"

    local tmp start end
    tmp=$(mktemp -d "$CACHE_DIR/.debian12.tmp.XXXXXX")
    # shellcheck disable=SC2064
    trap "remove_tree '$tmp'" EXIT
    start=$(date +%s)
    local keyring=()
    [[ -r /usr/share/keyrings/debian-archive-keyring.gpg ]] &&
        keyring=(--keyring=/usr/share/keyrings/debian-archive-keyring.gpg)
    # Run debootstrap in the background, in its own process group, and wait
    # for it, so that a signal to this script is handled at once: stop
    # debootstrap and its children, remove the half-built tree (EXIT trap).
    setsid debootstrap --variant=minbase --components=main \
        --include="$DEBIAN_INCLUDE" "${keyring[@]}" \
        "$DEBIAN_SUITE" "$tmp/root" "$mirror" > "$tmp/debootstrap.log" 2>&1 &
    DEBOOTSTRAP_PID=$!
    trap 'kill -TERM -- "-$DEBOOTSTRAP_PID" 2>/dev/null; wait "$DEBOOTSTRAP_PID"; exit 130' INT TERM HUP
    if ! wait "$DEBOOTSTRAP_PID"; then
        tail -n 30 "$tmp/debootstrap.log" >&2
        die "debootstrap failed"
    fi
    trap 'exit 130' INT TERM HUP
    end=$(date +%s)
    log "debootstrap took $((end - start)) s"
    debian_customize "$tmp/root"

    # Publish: move the finished tree into place, then write the stamp.
    rm -f "$DEBIAN_STAMP"
    if [[ -e $DEBIAN_TREE ]]; then
        old=$(mktemp -u "$CACHE_DIR/.debian12.old.XXXXXX")
        mv -T -- "$DEBIAN_TREE" "$old"
    fi
    mv -T -- "$tmp/root" "$DEBIAN_TREE"
    printf '%s\nbuilt %s from %s\n' "$DEBIAN_VERSION" "$(date -u +%FT%TZ)" "$mirror" > "$DEBIAN_STAMP.new"
    mv -f -- "$DEBIAN_STAMP.new" "$DEBIAN_STAMP"
    [[ -n ${old:-} && -e $old ]] && remove_tree "$old"
    printf '%s\n' "$DEBIAN_TREE"
}

fixture_debian_machine() {
    local name=$1 dest tree
    [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "invalid machine name: $name"
    dest=/var/lib/machines/$name
    tree=$(fixture_debian | tail -n1)
    if [[ -e $dest ]]; then
        log "$dest already exists, leaving it alone"
    else
        mkdir -p /var/lib/machines
        local tmp
        tmp=$(mktemp -d "/var/lib/machines/.$name.tmp.XXXXXX")
        cp -a --reflink=auto -- "$tree/." "$tmp/"
        mv -T -- "$tmp" "$dest"
        log "installed $dest"
    fi
    printf '%s\n' "$dest"
}

[[ $# -ge 1 ]] || usage
case $1 in
    busybox)
        [[ $# -eq 2 ]] || usage
        fixture_busybox "$2" ;;
    debian)
        [[ $# -eq 1 ]] || usage
        fixture_debian ;;
    debian-machine)
        [[ $# -eq 2 ]] || usage
        fixture_debian_machine "$2" ;;
    -h|--help) usage ;;
    *) usage ;;
esac
