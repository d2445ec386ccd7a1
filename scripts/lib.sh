# shellcheck shell=bash
# Shared by the scripts in scripts/ and .ci/run: where tools live, and small helpers.
# Source it; it changes nothing until a function is called.

# Everything installed by scripts/install-tools lives under this directory, versioned, so a second
# run (or a second checkout on the same machine) reuses it.
WATCHKEEPER_CACHE="${WATCHKEEPER_CACHE:-$HOME/.cache/watchkeeper}"
WATCHKEEPER_TOOLS="$WATCHKEEPER_CACHE/tools"
export WATCHKEEPER_CACHE WATCHKEEPER_TOOLS
case ":$PATH:" in
*":$WATCHKEEPER_TOOLS/bin:"*) ;;
*) export PATH="$WATCHKEEPER_TOOLS/bin:$PATH" ;;
esac

# The repository root (this file is in scripts/).
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO_ROOT

# Prints a section header that stands out in long CI logs.
section() {
    printf '\n==== %s ====\n' "$*"
}

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Installs Debian packages that are not installed yet (apt-get update only when needed, once).
apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "need root (or sudo) to install: ${missing[*]}"
        sudo=(sudo)
    fi
    echo "installing Debian packages: ${missing[*]}"
    if [ -z "${WATCHKEEPER_APT_UPDATED:-}" ]; then
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        WATCHKEEPER_APT_UPDATED=1
        export WATCHKEEPER_APT_UPDATED
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The watchkeeper binary built by cargo (CARGO_TARGET_DIR respected), built if missing or stale.
watchkeeper_bin() {
    local target="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
    (cd "$REPO_ROOT" && cargo build --quiet --bin watchkeeper) >&2 || return 1
    printf '%s\n' "$target/debug/watchkeeper"
}
