#!/usr/bin/env bash
# Installs Debian's chromium and chromium-driver for the demo page's browser test (tests/examples/test_space_app.py)
# when they are missing: apt-get as root, or through `sudo -n` where that works without a password. Never fails:
# where apt is unavailable the test skips and says why.
set -u
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    echo "browser: chromium and chromedriver present"
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "browser: no apt-get here; the browser test will skip"
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    apt=(env DEBIAN_FRONTEND=noninteractive apt-get)
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    apt=(sudo -n env DEBIAN_FRONTEND=noninteractive apt-get)  # sudo drops the environment
else
    echo "browser: not root and no passwordless sudo; the browser test will skip"
    exit 0
fi
log="${TMPDIR:-/tmp}/hf-recsys-browser-install.log"
if "${apt[@]}" update -q >"$log" 2>&1 \
    && "${apt[@]}" install -y -q --no-install-recommends chromium chromium-driver \
        >>"$log" 2>&1; then
    echo "browser: installed chromium and chromium-driver"
else
    echo "browser: apt-get failed (see $log); the browser test will skip"
fi
exit 0
