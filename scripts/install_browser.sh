#!/usr/bin/env bash
# Install the browser of the web-app test (tests/serve/test_app_browser.py): Debian's chromium and
# chromium-driver (chromedriver), which selenium drives headless. No test tool downloads a browser of its own.
#
# Idempotent: installs only what is missing and says what it did. Needs root or sudo for apt-get when
# something is missing; on a system without apt-get it prints what to install and exits 0 (the browser
# test then skips with the reason). Usage: scripts/install_browser.sh
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)

if [ ${#need[@]} -eq 0 ]; then
    echo "install_browser: chromium and chromedriver already installed, nothing to do"
    echo "  $(chromium --version 2>/dev/null | head -n1)"
    echo "  $(chromedriver --version 2>/dev/null | head -n1)"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser: no apt-get here; install ${need[*]} (Chromium + ChromeDriver of the same version)" \
         "with your package manager. The browser test skips until then." >&2
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "install_browser: need root (or sudo) to apt-get install ${need[*]}" >&2
        exit 1
    fi
fi

echo "install_browser: installing ${need[*]} with apt-get"
start=$(date +%s)
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "install_browser: installed ${need[*]} in $(( $(date +%s) - start )) s"
echo "  $(chromium --version 2>/dev/null | head -n1)"
echo "  $(chromedriver --version 2>/dev/null | head -n1)"
