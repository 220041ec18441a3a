#!/bin/sh
# lint.sh - cppcheck, clang-tidy and clang-format over docket's own code.
set -eu
sh tools/deps.sh cppcheck clang-tidy clang-format
SRC=$(git ls-files '*.c' '*.h' | grep -v '^tests/fixtures/')
CFLAGS="-std=gnu11 -D_GNU_SOURCE -I. -Ibuild/release/gen $(pkg-config --cflags libxml-2.0 sqlite3 libcurl libgit2 jansson libmicrohttpd libcrypto)"
status=0
echo "== clang-format"
clang-format --dry-run -Werror $SRC || status=1
echo "== cppcheck"
cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	--inline-suppr --suppress=missingIncludeSystem --suppress=unknownMacro -I. $(git ls-files '*.c') || status=1
echo "== clang-tidy"
clang-tidy --quiet $(git ls-files '*.c' | grep -v '^tests/') -- $CFLAGS 2>/dev/null || status=1
[ $status -eq 0 ] && echo "lint clean"
exit $status
