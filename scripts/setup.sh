#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain, idempotently:
# nothing is fetched when it is already there.
#   - python3 (the iCalendar conformance check) and Radicale (the real CalDAV
#     server the CalDAV tests start),
#   - Debian's chromium + chromium-driver (the browser tests),
#   - openssl and PostgreSQL's initdb/pg_ctl (the PostgreSQL TLS tests),
#   - the TypeScript client's npm packages, from its lockfile.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }
as_root() { [ "$(id -u)" = 0 ] && need apt-get; }
apt_install() {
  if as_root; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null \
      || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null; }
  else
    echo "cannot install $* (not root or no apt-get); install them by hand" >&2
    return 1
  fi
}

if ! need python3; then
  echo "python3 is required (the iCalendar conformance check runs on it)" >&2
  exit 1
fi
if ! need psql && as_root; then
  apt_install postgresql-client
fi

# The PostgreSQL TLS tests (crates/store/tests/postgres_tls.rs) start servers of
# their own with initdb and pg_ctl (Debian: /usr/lib/postgresql/<version>/bin, or
# on PATH) and make throwaway certificates with the openssl command.
if ! need openssl; then
  echo "installing openssl (PostgreSQL TLS tests)"
  apt_install openssl
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! need initdb; then
  echo "installing PostgreSQL's server programs (PostgreSQL TLS tests)"
  apt_install postgresql
fi

RADICALE_VERSION=3.9.0
if ! python3 -c "import radicale, sys; sys.exit(radicale.VERSION != '$RADICALE_VERSION')" 2>/dev/null; then
  echo "installing Radicale $RADICALE_VERSION (CalDAV tests)"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check "radicale==$RADICALE_VERSION"
fi

if ! need chromium || ! need chromedriver; then
  echo "installing Debian chromium + chromium-driver (browser tests)"
  apt_install chromium chromium-driver
fi

if [ -f clients/typescript/package-lock.json ] && need npm; then
  (cd clients/typescript && { [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] \
    || npm ci --no-audit --no-fund --loglevel=error; })
fi
echo "test prerequisites present"
