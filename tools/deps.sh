#!/bin/sh
# deps.sh [PACKAGE...] - make sure the Debian packages docket needs are
# installed. As root it installs what is missing (running apt-get update
# first when the package lists are empty or stale); otherwise it prints the
# exact command to run. Extra packages (for lint, bench) may be named.
set -eu
PKGS="gcc make pkg-config libxml2-dev libsqlite3-dev sqlite3 libcurl4-openssl-dev
libgit2-dev zlib1g-dev libjansson-dev libmicrohttpd-dev libssl-dev libcmocka-dev graphviz
git curl openssl jq fonts-wqy-microhei strace $*"
missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
# The browser test (tests/e2e/browser_inbox.sh) needs chromium, node and
# npm. Asked for by command, not package: a node from elsewhere (e.g.
# NodeSource, which bundles npm and conflicts with Debian's npm) will do.
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "docket needs these Debian packages:$missing" >&2
	echo "run: sudo apt-get update && sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists; an old one may have stale ones.
if ! apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1; then
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends $missing >/dev/null
fi
