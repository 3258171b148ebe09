#!/usr/bin/env bash
# The link check must fail on each kind of bad reference (and pass on a clean tree): a tree
# with one of each is checked, and every problem must be reported.
set -u
py=${1:-python3}
here=$(cd "$(dirname "$0")" && pwd)
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
mkdir -p "$t/docs" "$t/include/flowception/x"
cat > "$t/docs/method.md" <<'MD'
# Method
## §1 Objects
## §2 Schedulers
MD
printf 'A clean page: `docs/method.md`, [the method](method.md), docs/method.md §2.\n' > "$t/docs/good.md"
printf '// A clean header (§1).\n' > "$t/include/flowception/x/good.hpp"
"$py" "$here/check_links.py" "$t" || { echo "a clean tree was refused"; exit 1; }
cat > "$t/docs/bad.md" <<'MD'
The method is in ../shared/method.md.
See [the tutorial](tutorial.md) and `include/flowception/x/missing.hpp`.
As docs/method.md §5 says.
MD
printf '// See §9 of the method.\n' > "$t/include/flowception/x/bad.hpp"
out=$("$py" "$here/check_links.py" "$t" 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 1 ] || { echo "expected exit 1, got $rc"; exit 1; }
for want in "docs/bad.md:1: refers to a path outside the repository" "docs/bad.md:2: link to a missing file: tutorial.md" \
            "docs/bad.md:2: names a file that does not exist: include/flowception/x/missing.hpp" \
            "docs/bad.md:3: cites docs/method.md §5, which that document does not have" \
            "include/flowception/x/bad.hpp:1: cites §9, which docs/method.md does not have"; do
  grep -qF "$want" <<< "$out" || { echo "missing report: $want"; exit 1; }
done
# In a git repository only the repository's files count: a file left untracked (or ignored) by a
# local run must not make a reference look valid, while an output under runs/ or build/ is
# named, not required.
g="$t/git"
mkdir -p "$g/docs" "$g/runs"
cp "$t/docs/method.md" "$g/docs/method.md"
printf 'Outputs: `runs/demo/model.safetensors`. Untracked: `docs/draft.md`.\n' > "$g/docs/page.md"
printf 'a draft\n' > "$g/docs/draft.md"
git -C "$g" init -q && git -C "$g" add docs/method.md docs/page.md || { echo "git is needed for this part"; exit 1; }
out=$("$py" "$here/check_links.py" "$g" 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 1 ] || { echo "expected exit 1 for an untracked file, got $rc"; exit 1; }
grep -qF "docs/page.md:1: names a file that does not exist: docs/draft.md" <<< "$out" ||
  { echo "missing report: an untracked file counted as present"; exit 1; }
if grep -qF "runs/demo" <<< "$out"; then echo "an output under runs/ was reported"; exit 1; fi
echo "check_links self-test: every kind of bad reference was reported"
