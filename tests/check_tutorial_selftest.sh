#!/usr/bin/env bash
# Shows that tests/check_tutorial.py fails when a program's output drifts from the tutorial: a
# figure outside the tolerance, changed text, a missing line, a missing tolerance, a failing
# program; and that it passes output within the tolerance, with times and speeds ignored.
# Usage: check_tutorial_selftest.sh PYTHON
set -u
py=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/repo/docs" "$work/bin"
cat >"$work/bin/prog" <<'P'
#!/usr/bin/env bash
echo "TV 0.0165, mean 22.65 over 2000 videos"
echo "trained 1000 steps in 99 s (644 videos/s)"
echo "bars 0.242 ####################"
P
printf '#!/usr/bin/env bash\nexit 3\n' >"$work/bin/broken"
chmod +x "$work/bin/prog" "$work/bin/broken"
tutorial() {  # $1: expected output lines, $2: the tolerance sentence, $3: the program
  printf '# T\n\n```console\n$ build/release/examples/tutorial/%s\n%b\n```\n\n%s\n' "${3:-prog}" "$1" "$2" >"$work/repo/docs/tutorial.md"
  "$py" "$here/check_tutorial.py" "$work/repo/docs/tutorial.md" "$work/bin" >"$work/out" 2>&1
}
tol='*Checked in CI: every figure within ±0.01 or 1 %; times are not compared.*'
good='TV 0.0165, mean 22.65 over 2000 videos\ntrained 1000 steps in 120 s (500 videos/s)\nbars 0.242 ###################'
fails=0
expect() {  # $1: 0 = must pass, 1 = must fail; $2: what the case is
  local rc=$3
  if { [ "$1" = 0 ] && [ "$rc" != 0 ]; } || { [ "$1" = 1 ] && [ "$rc" = 0 ]; }; then
    echo "FAIL: $2 (exit $rc):"; cat "$work/out"; fails=$((fails + 1))
  else
    echo "ok: $2"
  fi
}
tutorial "$good" "$tol"; expect 0 "matching output, other times and bar lengths" $?
tutorial "${good/22.65/22.60}" "$tol"; expect 0 "a figure within the tolerance" $?
tutorial "${good/22.65/23.65}" "$tol"; expect 1 "a figure outside the tolerance" $?
tutorial "${good/over/among}" "$tol"; expect 1 "changed text" $?
tutorial "${good}\nextra line 1" "$tol"; expect 1 "a missing line of output" $?
tutorial "$good" "No tolerance here."; expect 1 "a block without a stated tolerance" $?
tutorial "$good" "$tol" broken; expect 1 "a program that fails" $?
printf '# T\n\nNo blocks.\n' >"$work/repo/docs/tutorial.md"
"$py" "$here/check_tutorial.py" "$work/repo/docs/tutorial.md" "$work/bin" >"$work/out" 2>&1; expect 1 "a tutorial without any block" $?
[ "$fails" = 0 ] || exit 1
