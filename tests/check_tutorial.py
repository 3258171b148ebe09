#!/usr/bin/env python3
"""Runs every command of docs/tutorial.md and compares its output with the output printed there.

A step of the tutorial shows a ```console block: the first line is "$ COMMAND", the rest is the
output the tutorial promises. Right after the block (within three lines) a sentence states the
tolerance:  "Checked in CI: every figure within ±A or R %"  (A absolute, R percent of the
tutorial's value, whichever is larger). The check:
  - runs COMMAND, with build/release/examples/tutorial/ replaced by the programs' folder given on
    the command line, in a fresh temporary folder that shows the repository's assets/ (so what
    the programs write, under runs/tutorial, goes there, and later blocks can read what earlier
    ones wrote), with OMP_NUM_THREADS=2 as on the project's CI machines;
  - splits both outputs into numbers and the text between them; the text must be equal (runs of
    white space count as one space, bars of '#' are pictures of the figure beside them and are
    not compared), every number must be within the tolerance, except times and speeds (a number
    followed by "s" or ".../s" as a unit), which depend on the machine;
  - fails when a block states no tolerance, or when the tutorial shows no block at all.
Usage: check_tutorial.py TUTORIAL.md PROGRAMS_DIR [--only TEXT] [--print] [--update]
  --only TEXT: run only the blocks whose command contains TEXT;
  --print: print each command's actual output;
  --update: write each command's actual output into the tutorial (review the diff before
            committing: the text around the blocks must still say what the figures show).
Exit 0 when every block matches, 1 with one message per difference otherwise.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

PREFIX = "build/release/examples/tutorial/"
NUMBER = re.compile(r"(?<![A-Za-z_])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
UNIT = re.compile(r"^\s?(?:s|ms|min|[A-Za-z]+/s)(?![A-Za-z0-9_=])(?!\s*=)")
TOLERANCE = re.compile(r"Checked in CI: every figure within ±\s*([0-9.]+) or ([0-9.]+)\s*%")


def blocks(md):
    """(line number, command, expected output, (abs, rel)) for each console block."""
    lines = md.split("\n")
    out, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```console":
            start = i
            j = i + 1
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            body = lines[i + 1:j]
            if not body or not body[0].startswith("$ "):
                raise SystemExit(f"tutorial line {start + 1}: a console block must start with '$ COMMAND'")
            tol = None
            for k in range(j + 1, min(j + 4, len(lines))):
                m = TOLERANCE.search(lines[k])
                if m:
                    tol = (float(m.group(1)), float(m.group(2)) / 100.0)
                    break
            out.append((start + 1, body[0][2:].strip(), "\n".join(body[1:]), tol))
            i = j + 1
        else:
            i += 1
    return out


def pieces(text):
    """[('n', value, text) | ('t', text)]: numbers and the text between them."""
    out, pos = [], 0
    for m in NUMBER.finditer(text):
        out.append(("t", text[pos:m.start()]))
        timed = bool(UNIT.match(text[m.end():]))
        out.append(("n", float(m.group(0)), m.group(0), timed))
        pos = m.end()
    out.append(("t", text[pos:]))
    return out


def norm(t):
    t = re.sub(r"#+", "#", t)
    return re.sub(r"\s+", " ", t)


def compare(expected, actual, tol):
    """Differences between expected and actual output, as messages."""
    problems = []
    e_lines = [l for l in expected.strip("\n").split("\n")]
    a_lines = [l for l in actual.strip("\n").split("\n")]
    if len(e_lines) != len(a_lines):
        problems.append(f"{len(a_lines)} lines of output, the tutorial shows {len(e_lines)}")
    for n, (e, a) in enumerate(zip(e_lines, a_lines), 1):
        pe, pa = pieces(e), pieces(a)
        if len(pe) != len(pa):
            problems.append(f"output line {n}: '{a.strip()}' where the tutorial shows '{e.strip()}'")
            continue
        for x, y in zip(pe, pa):
            if x[0] != y[0]:
                problems.append(f"output line {n}: '{a.strip()}' where the tutorial shows '{e.strip()}'")
                break
            if x[0] == "t":
                if norm(x[1]).strip() != norm(y[1]).strip() and norm(x[1]) != norm(y[1]):
                    problems.append(f"output line {n}: text '{y[1].strip()}' where the tutorial shows '{x[1].strip()}'")
                    break
            else:
                if x[3] or y[3]:
                    continue  # a time or a speed: not compared
                limit = max(tol[0], tol[1] * abs(x[1]))
                if abs(x[1] - y[1]) > limit + 1e-12:
                    problems.append(f"output line {n}: {y[2]} where the tutorial shows {x[2]} (tolerance {limit:g})")
    return problems


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    md_path, bin_dir = argv[1], os.path.abspath(argv[2])
    only = argv[argv.index("--only") + 1] if "--only" in argv else None
    show = "--print" in argv
    update = "--update" in argv
    updated = {}
    root = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(md_path)), ".."))
    with open(md_path, encoding="utf-8") as f:
        found = blocks(f.read())
    if not found:
        print(f"{md_path}: no console block to check")
        return 1
    failures = 0
    work = tempfile.mkdtemp(prefix="tutorial.")
    os.symlink(os.path.join(root, "assets"), os.path.join(work, "assets"))
    env = dict(os.environ, OMP_NUM_THREADS="2")
    try:
        for line, command, expected, tol in found:
            if only and only not in command:
                continue
            if tol is None:
                print(f"tutorial line {line}: no 'Checked in CI: every figure within ±A or R %' after the block")
                failures += 1
                continue
            if not command.startswith(PREFIX):
                print(f"tutorial line {line}: the command must run a program in {PREFIX}: {command}")
                failures += 1
                continue
            run = os.path.join(bin_dir, command[len(PREFIX):])
            r = subprocess.run(run, shell=True, cwd=work, env=env, capture_output=True, text=True)
            actual = r.stdout
            if show:
                print(f"$ {command}\n{actual}")
            if update and r.returncode == 0:
                updated[line] = actual.rstrip("\n")
            if r.returncode != 0:
                print(f"tutorial line {line}: '{command}' exited with {r.returncode}: {r.stderr.strip()}")
                failures += 1
                continue
            problems = compare(expected, actual, tol)
            for p in problems:
                print(f"tutorial line {line} ({command}): {p}")
            failures += 1 if problems else 0
            if not problems:
                print(f"tutorial line {line}: {command}: output matches (within ±{tol[0]:g} or {100 * tol[1]:g} %)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if update and updated:
        with open(md_path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        out, i = [], 0
        while i < len(lines):
            out.append(lines[i])
            if i + 1 in updated:  # the block's opening line: keep "$ COMMAND", replace the output
                out.append(lines[i + 1])
                j = i + 2
                while lines[j].strip() != "```":
                    j += 1
                out.extend(updated[i + 1].split("\n"))
                i = j
                continue
            i += 1
        with open(md_path, "w", encoding="utf-8") as f:
            f.write("\n".join(out))
        print(f"updated {len(updated)} block(s) of {md_path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
