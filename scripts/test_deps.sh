#!/usr/bin/env bash
# What `make test` and CI need beyond the Python packages: Debian's Chromium for the browser tests
# (tests/web, driven by Playwright), nginx and docker-compose 1.29 for the deployment checks (tests/deploy),
# and the front ends' npm packages at the lockfile's exact versions (frontend/, tests/web/test_frontends.py).
# Installed with apt-get where that works (Debian/Ubuntu, as root); otherwise this says which tests will
# skip and how to enable them, and the suite runs without them. Never fails the build by itself.
set -uo pipefail

# A package is present when one of its commands is (Ubuntu names Chromium's chromium-browser).
present() {
    case "$1" in
        chromium) command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 ;;
        *) command -v "$1" >/dev/null 2>&1 ;;
    esac
}

missing=()
for package in chromium nginx docker-compose; do
    present "$package" || missing+=("$package")
done

if [ ! -d frontend/node_modules ]; then
    if command -v npm >/dev/null 2>&1; then
        (cd frontend && npm ci --no-audit --no-fund --loglevel=error) \
            || echo "the front ends' npm packages could not be installed: their browser tests will skip"
    else
        echo "npm is not installed: the front-end browser tests (tests/web/test_frontends.py) will skip; install Node.js 20"
    fi
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    echo "installing ${missing[*]} for the tests (apt-get)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        || echo "apt-get could not install ${missing[*]}"
fi

for package in "${missing[@]}"; do
    present "$package" && continue
    case "$package" in
        chromium) echo "chromium is not installed: the browser tests (tests/web, and the tuning report check in tests/tuning) will skip;" \
            "enable them with: sudo apt-get install -y --no-install-recommends chromium" ;;
        nginx) echo "nginx is not installed: the nginx -t check of docker/nginx.conf (tests/deploy) will skip;" \
            "enable it with: sudo apt-get install -y --no-install-recommends nginx" ;;
        docker-compose) echo "docker-compose is not installed: its check of docker-compose.yml (tests/deploy) will skip;" \
            "enable it with: sudo apt-get install -y --no-install-recommends docker-compose" ;;
    esac
done
exit 0
