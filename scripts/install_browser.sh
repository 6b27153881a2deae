#!/usr/bin/env bash
# Install the browser of the web-app test (tests/serve/test_app_browser.py): Debian's chromium and
# chromium-driver (chromedriver), which selenium drives headless. No test tool downloads a browser of its own.
#
# Idempotent: installs only what is missing and says what it did. CLINKD_CHROMIUM / CLINKD_CHROMEDRIVER,
# when set, name the binaries to use instead of those on PATH (the test reads the same variables).
#
# Installing needs apt-get and root or passwordless sudo (`make test` runs this script unattended, so it
# never waits at a password prompt). Where that is not possible:
#   - outside CI: print how to enable the browser test and exit 0; the test then skips, saying the same;
#   - in CI (CI=true): exit 1, as the browser test must run there.
# Usage: scripts/install_browser.sh   (as root, or: sudo bash scripts/install_browser.sh)
set -euo pipefail

ENABLE="run \`sudo bash scripts/install_browser.sh\`, or set CLINKD_CHROMIUM=/path/to/chromium"
ENABLE+=" and CLINKD_CHROMEDRIVER=/path/to/chromedriver"
case "$(printf '%s' "${CI:-}" | tr '[:upper:]' '[:lower:]')" in
    1 | true | yes) ci=1 ;;
    *) ci=0 ;;
esac

# cannot WHY: the browser cannot be installed here; fatal only in CI.
cannot() {
    if [ "$ci" = 1 ]; then
        echo "install_browser: $1 (CI=${CI}: the browser test must run, so this is an error)" >&2
        exit 1
    fi
    echo "install_browser: $1; the browser test will be skipped. To enable it, $ENABLE." >&2
    exit 0
}

# locate VAR NAME...: print the binary named by $VAR, else the first NAME on PATH; status 1 if none.
locate() {
    local var=$1 name path
    shift
    if [ -n "${!var:-}" ]; then
        [ -f "${!var}" ] && [ -x "${!var}" ] || cannot "$var=${!var} is not an executable file"
        echo "${!var}"
        return 0
    fi
    for name in "$@"; do
        path=$(command -v "$name" 2>/dev/null) && [ -x "$path" ] && echo "$path" && return 0
    done
    return 1
}

need=()
locate CLINKD_CHROMIUM chromium chromium-browser >/dev/null || need+=(chromium)
locate CLINKD_CHROMEDRIVER chromedriver >/dev/null || need+=(chromium-driver)

versions() {
    echo "  $("$(locate CLINKD_CHROMIUM chromium chromium-browser)" --version 2>/dev/null | head -n1)"
    echo "  $("$(locate CLINKD_CHROMEDRIVER chromedriver)" --version 2>/dev/null | head -n1)"
}

if [ ${#need[@]} -eq 0 ]; then
    echo "install_browser: chromium and chromedriver already installed, nothing to do"
    versions
    exit 0
fi

command -v apt-get >/dev/null 2>&1 \
    || cannot "no apt-get here; install ${need[*]} (Chromium + ChromeDriver of one version) with your package manager"

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    elif [ "$ci" = 1 ] && command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)  # CI as before: let sudo ask (or fail) itself
    else
        cannot "need root or passwordless sudo to apt-get install ${need[*]}"
    fi
fi

echo "install_browser: installing ${need[*]} with apt-get"
start=$(date +%s)
${sudo[@]+"${sudo[@]}"} apt-get update -qq || cannot "apt-get update failed"
${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || cannot "apt-get install ${need[*]} failed"
locate CLINKD_CHROMIUM chromium chromium-browser >/dev/null && locate CLINKD_CHROMEDRIVER chromedriver >/dev/null \
    || cannot "apt-get installed ${need[*]} but chromium or chromedriver is still not on PATH"
echo "install_browser: installed ${need[*]} in $(( $(date +%s) - start )) s"
versions
