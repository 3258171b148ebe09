#!/usr/bin/env python3
"""Checks that documents and comments refer only to things inside the repository.

Fails (exit 1, one line per problem) when a tracked text file:
  - refers to a path outside the repository (../shared/..., /work/...);
  - has a Markdown link [text](target) to a file that does not exist;
  - names a repository file in backticks (`docs/x.md`, `include/flowception/...`, `dit/model.hpp`,
    `tests/...`) that does not exist;
  - cites a section "X.md §N" (or, in the library's headers, a bare "§N", which means
    docs/method.md) that the document does not have.
A file "exists" when git tracks it (every file on disk when there is no git), so that what a
local run left behind cannot hide a missing file; paths under build/ and runs/ name outputs that
commands write and are not required.
Usage: check_links.py [REPO_ROOT]
"""
import os
import re
import subprocess
import sys

root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
TEXT = (".md", ".hpp", ".h", ".cpp", ".cu", ".cuh", ".sh", ".py", ".txt", ".cmake", ".in")
SKIP_DIRS = ("build/", "runs/", "tests/fuzz/corpus/", ".git/")
OUTPUTS = ("build/", "runs/")  # folders that commands write into; the documents name their outputs


def repository_files():
    """Every file of the repository: git's tracked files, so that files a local run left behind
    (build outputs, runs/, untracked drafts) cannot make a reference look valid; every file on disk
    when there is no git."""
    try:
        out = subprocess.run(["git", "-C", root, "ls-files"], capture_output=True, text=True, check=True).stdout
        return [f for f in out.split("\n") if f]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for d, _, names in os.walk(root):
            files += [os.path.relpath(os.path.join(d, n), root) for n in names]
        return files


FILES = set(repository_files())
DIRS = {os.path.dirname(f) for f in FILES}
for _d in list(DIRS):
    while _d:
        _d = os.path.dirname(_d)
        DIRS.add(_d)


def in_repository(rel):
    """True when `rel` (relative to the root, normalised) is a file or folder of the repository."""
    rel = os.path.normpath(rel)
    return rel in FILES or rel in DIRS or rel == "."


def tracked_files():
    files = sorted(FILES)
    # The check's own files hold bad references on purpose (its examples and its self-test).
    own = ("tests/check_links.py", "tests/check_links_selftest.sh")
    return [f for f in files if f.endswith(TEXT) and not f.startswith(SKIP_DIRS) and f not in own
            and os.path.isfile(os.path.join(root, f))]


def sections(md_path):
    """The § numbers and the "N." numbers of a document's headings."""
    found = set()
    with open(md_path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                found.update(re.findall(r"§(\d+(?:\.\d+)?)", line))
                m = re.match(r"#+\s+(\d+(?:\.\d+)?)\.?\s", line)
                if m:
                    found.add(m.group(1))
    return found


OUTSIDE = re.compile(r"(\.\./shared/|/work/|shared/method\.md)")
MD_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
TICKED = re.compile(r"`([A-Za-z0-9_./-]+\.(?:md|hpp|h|cpp|cu|sh|py|json|safetensors|txt|cmake))`")
SECTION_REF = re.compile(r"([A-Za-z0-9_/-]+\.md) §(\d+(?:\.\d+)?)")
BARE_SECTION = re.compile(r"§(\d+)")


def exists(path, here):
    if any(c in path for c in "*<>") or "XXX" in path:
        return True  # a pattern, not a file
    if path.startswith(("thrust/", "cub/", "cuda/", "Eigen/", "nlohmann/", "CLI/", "gtest/", "benchmark/")):
        return True  # a third-party header, named as it is included
    if path.startswith(OUTPUTS):
        return True  # what a command writes (build/, runs/): not a file of the repository
    for base in ("", os.path.join("include", "flowception"), here, "docs", "tests"):
        if in_repository(os.path.join(base, path)):
            return True
    return False


def main():
    problems = []
    method_sections = sections(os.path.join(root, "docs", "method.md")) if os.path.exists(os.path.join(root, "docs", "method.md")) else set()
    doc_sections = {}
    for rel in tracked_files():
        here = os.path.dirname(rel)
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            lines = f.read().split("\n")
        for n, line in enumerate(lines, 1):
            where = f"{rel}:{n}"
            if OUTSIDE.search(line):
                problems.append(f"{where}: refers to a path outside the repository: {OUTSIDE.search(line).group(0)}")
            if rel.endswith(".md"):
                for target in MD_LINK.findall(line):
                    if re.match(r"[a-z]+:", target) or target.startswith("#"):
                        continue
                    path = target.split("#")[0]
                    if not in_repository(os.path.join(here, path)):
                        problems.append(f"{where}: link to a missing file: {target}")
            for path in TICKED.findall(line):
                if "/" in path and not path.startswith(("http", "/")) and not exists(path, here):
                    problems.append(f"{where}: names a file that does not exist: {path}")
            for doc, sec in SECTION_REF.findall(line):
                name = os.path.basename(doc)
                target = next((p for p in (os.path.join(root, "docs", name), os.path.join(root, name)) if os.path.exists(p)), None)
                if target is None:
                    problems.append(f"{where}: cites {doc} §{sec}, a document that does not exist")
                    continue
                have = doc_sections.setdefault(target, sections(target))
                if sec not in have and sec.split(".")[0] not in have:
                    problems.append(f"{where}: cites {doc} §{sec}, which that document does not have")
            if rel.startswith("include/") and "//" in line:
                for sec in BARE_SECTION.findall(line.split("//", 1)[1]):
                    if sec not in method_sections:
                        problems.append(f"{where}: cites §{sec}, which docs/method.md does not have")
    for p in problems:
        print(p)
    print(f"check_links: {len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
