#!/usr/bin/env python3
"""Builds every README's Rust code in a new crate, as a user would paste it.

Doctests compile README blocks too, but with the whole package's dependency graph in scope, so
a block that uses `log` or `mio` compiles there and not in a user's crate. Here each README gets
a fresh crate whose `[dependencies]` are exactly the ```toml block the README shows (the
workspace crates pointed at their folders), and each ```rust block becomes one example of it.

Rules, the same as rustdoc's: lines starting with `# ` (or a lone `#`) are hidden, not removed;
a block without `fn main` is wrapped in one; `ignore` and non-Rust blocks are skipped; `no_run`
blocks are compiled, never run (nothing here runs).

Usage: .ci/readme_crates.py [README ...]   (default: the root README and each crate's)
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DEFAULT = ["README.md", "timer/README.md", "net/README.md", "heartbeat/README.md"]
WORKSPACE_CRATES = {
    "wheelbeat-timer": "timer",
    "wheelbeat-net": "net",
    "wheelbeat-heartbeat": "heartbeat",
}
FENCE = re.compile(r"^```(.*)$")


def blocks(text):
    """Yields (info string, body) for each fenced block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i].strip())
        if not m:
            i += 1
            continue
        info = m.group(1).strip()
        body = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        i += 1
        yield info, body


def is_rust(info):
    tags = [t.strip() for t in info.split(",") if t.strip()]
    if not tags:
        return False
    if tags[0] != "rust":
        return False
    return "ignore" not in tags and "compile_fail" not in tags


def unhide(body):
    out = []
    for line in body:
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        if stripped == "#":
            out.append("")
        elif stripped.startswith("# "):
            out.append(indent + stripped[2:])
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def as_program(code):
    if re.search(r"^\s*(pub\s+)?fn\s+main\s*\(", code, re.M):
        return code
    # rustdoc's wrapping: `use` lines stay at the top, the rest goes into main.
    uses, rest = [], []
    for line in code.splitlines():
        (uses if line.startswith("use ") else rest).append(line)
    body = "\n".join("    " + l if l else l for l in rest)
    return "\n".join(uses) + "\n\nfn main() {\n" + body + "\n}\n"


def dependencies(text, readme):
    for info, body in blocks(text):
        if info.startswith("toml") and any(l.strip() == "[dependencies]" for l in body):
            return body
    sys.exit(f"{readme}: no ```toml block with [dependencies]: say what a user must add")


def localize(dep_lines):
    """Points the workspace crates at their folders, keeping features."""
    out = []
    for line in dep_lines:
        m = re.match(r'^\s*(wheelbeat-[a-z]+)\s*=\s*(.*)$', line)
        if m and m.group(1) in WORKSPACE_CRATES:
            path = os.path.join(ROOT, WORKSPACE_CRATES[m.group(1)])
            spec = m.group(2).strip()
            feats = re.search(r"features\s*=\s*(\[[^\]]*\])", spec)
            extra = f", features = {feats.group(1)}" if feats else ""
            out.append(f'{m.group(1)} = {{ path = "{path}"{extra} }}')
        else:
            out.append(line)
    return out


def check(readme, target_dir):
    text = open(os.path.join(ROOT, readme), encoding="utf-8").read()
    programs = [as_program(unhide(b)) for info, b in blocks(text) if is_rust(info)]
    if not programs:
        print(f"{readme}: no Rust blocks")
        return True
    deps = localize(dependencies(text, readme))
    crate = tempfile.mkdtemp(prefix="readme-crate-")
    try:
        os.makedirs(os.path.join(crate, "src"))
        os.makedirs(os.path.join(crate, "examples"))
        with open(os.path.join(crate, "Cargo.toml"), "w") as f:
            f.write('[package]\nname = "readme-check"\nversion = "0.0.0"\nedition = "2024"\n'
                    "publish = false\n\n[workspace]\n\n" + "\n".join(deps) + "\n")
        open(os.path.join(crate, "src", "lib.rs"), "w").close()
        for i, program in enumerate(programs):
            with open(os.path.join(crate, "examples", f"block{i + 1}.rs"), "w") as f:
                f.write(program)
        # The workspace's lock file pins the same versions CI tested; cargo drops the rest.
        shutil.copy(os.path.join(ROOT, "Cargo.lock"), os.path.join(crate, "Cargo.lock"))
        env = dict(os.environ, CARGO_TARGET_DIR=target_dir)
        r = subprocess.run(["cargo", "build", "--quiet", "--examples"], cwd=crate, env=env)
        ok = r.returncode == 0
        print(f"{readme}: {len(programs)} Rust block(s) with its own [dependencies]: "
              + ("compile" if ok else "FAIL"))
        return ok
    finally:
        shutil.rmtree(crate, ignore_errors=True)


def main():
    readmes = sys.argv[1:] or DEFAULT
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    target = os.path.join(target, "readme-crates")
    results = [check(r, target) for r in readmes]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
