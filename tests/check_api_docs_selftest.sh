#!/usr/bin/env bash
# Shows that the docs target's doxygen configuration fails on an undocumented public name and
# names it, and passes once the name is documented: the check that "docs" builds is not vacuous.
# Usage: check_api_docs_selftest.sh DOXYGEN CONFIGURED_DOXYFILE
set -u
doxygen=$1 doxyfile=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() {  # the project's configuration, reading only $work/probe.hpp
  { cat "$doxyfile"; echo "INPUT = $work/probe.hpp"; echo "OUTPUT_DIRECTORY = $work/out"; echo "USE_MDFILE_AS_MAINPAGE ="; } |
    "$doxygen" - >"$work/stdout" 2>"$work/stderr"
}
cat >"$work/probe.hpp" <<'H'
/// \file
/// A header for the self-test.
/// A documented namespace, so that its free functions are checked.
namespace probe {
/// A documented function.
inline int documented() { return 1; }
inline int forgotten_function() { return 2; }
/// A documented struct with an undocumented member.
struct Holder { int forgotten_member = 0; };
}  // namespace probe
H
if run; then echo "FAIL: doxygen passed a header with undocumented names"; exit 1; fi
for name in forgotten_function forgotten_member; do
  grep -q "$name" "$work/stderr" || { echo "FAIL: the warnings do not name $name:"; cat "$work/stderr"; exit 1; }
done
sed -i -e 's|^inline int forgotten_function|/// Now documented.\ninline int forgotten_function|' \
       -e 's|int forgotten_member = 0;|int forgotten_member = 0;  ///< Now documented.|' "$work/probe.hpp"
if ! run; then echo "FAIL: doxygen refused the documented header:"; cat "$work/stderr"; exit 1; fi
echo "ok: undocumented names fail the docs configuration and are named; documented ones pass"
