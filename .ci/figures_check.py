#!/usr/bin/env python3
"""Fails when a figure quoted in a README is not in benches/RESULTS.md.

Definitions, precisely:

- A *region* is the text between a line `<!-- figures:NAME -->` and the next line
  `<!-- /figures:NAME -->` (each marker alone on its line, surrounding spaces ignored).
  Regions do not nest, each NAME appears at most once per file, and every region is closed;
  a line starting with `<!--` that mentions `figures:` but is not a marker is an error.
  NAME is `[a-z0-9-]+` optionally followed by `.PART` (`[a-z0-9-]+`).
- `benches/figures.sh` writes them: in `benches/RESULTS.md` a region is named after a
  *source* (`compare`, `loopbench`, ...) and holds the commands and what they printed; in a
  README a region is named `SOURCE.PART` and quotes figures from that source.
- A *figure* is a maximal run of digits, possibly with inner `.` or `,` groups between digits
  (`69.4`, `123155`, `1,000,000`, `1.95.0`), not preceded by a letter, digit, `_` or `.`
  (so `p99`, `x86_64`, `u64` and the `2` in `v1.2` after `.` hold no figure) and not
  followed by a digit. Units after it do not matter (`2.9ns`, `10k`, `1M` give `2.9`, `10`,
  `1`). A sign is not part of it. Figures compare as strings: `0.14` is not `0.140`.
- The check: every README (`README.md` anywhere in the tree, outside `.git` and `target`) is
  read; each of its regions must name a source that has a region in `benches/RESULTS.md`, and
  every figure in the README region must occur among the figures of that RESULTS region.
  Each README region carries its run's stamp (date and time, commit, load average), so a
  region left from an older run fails as soon as the RESULTS region is regenerated.
- Numbers outside regions are not checked (defaults, limits and protocol constants live
  there); figures measured by a benchmark belong inside a region.

Usage:
    .ci/figures_check.py              # check the tree; exit 1 listing every missing figure
    .ci/figures_check.py --self-test  # show that the check catches what it should, then check
                                      # a copy of the real tree with a hand-edited number
"""

import os
import re
import shutil
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
RESULTS = os.path.join("benches", "RESULTS.md")
MARKER = re.compile(r"^<!-- (/?)figures:([a-z0-9-]+(?:\.[a-z0-9-]+)?) -->$")
FIGURE = re.compile(r"(?<![A-Za-z0-9_.])\d+(?:[.,]\d+)*(?!\d)")


class Bad(Exception):
    """A file whose regions are malformed."""


def regions(text, path):
    """{name: [(line number, line)]} of each region's body."""
    out, name, body = {}, None, None
    for no, line in enumerate(text.splitlines(), 1):
        m = MARKER.match(line.strip())
        if not m:
            if line.strip().startswith("<!--") and "figures:" in line:
                raise Bad(f"{path}:{no}: malformed figures marker: {line.strip()}")
            if name is not None:
                body.append((no, line))
            continue
        closing, found = m.group(1) == "/", m.group(2)
        if not closing:
            if name is not None:
                raise Bad(f"{path}:{no}: region {found} opens inside region {name}")
            if found in out:
                raise Bad(f"{path}:{no}: region {found} appears twice")
            name, body = found, []
        else:
            if found != name:
                raise Bad(f"{path}:{no}: closes region {found} but {name} is open")
            out[name], name = body, None
    if name is not None:
        raise Bad(f"{path}: region {name} is never closed")
    return out


def figures(line):
    return FIGURE.findall(line)


def readmes(root):
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in (".git", "target", "node_modules"))
        if "README.md" in files:
            out.append(os.path.relpath(os.path.join(d, "README.md"), root))
    return out


def check(root):
    """The list of problems in the tree at root (empty when it passes) and the number of
    README figures checked."""
    problems, checked = [], 0
    try:
        with open(os.path.join(root, RESULTS)) as f:
            results = regions(f.read(), RESULTS)
    except (OSError, Bad) as e:
        return [str(e)], 0
    known = {
        name: {fig for _, line in body for fig in figures(line)} for name, body in results.items()
    }
    for name in results:
        if "." in name:
            problems.append(f"{RESULTS}: region {name}: RESULTS regions are named after a source")
    for path in readmes(root):
        try:
            with open(os.path.join(root, path)) as f:
                found = regions(f.read(), path)
        except Bad as e:
            problems.append(str(e))
            continue
        for name, body in found.items():
            source = name.split(".")[0]
            if "." not in name:
                problems.append(f"{path}: region {name}: README regions are named SOURCE.PART")
            if source not in known:
                problems.append(f"{path}: region {name}: {RESULTS} has no region {source}")
                continue
            for no, line in body:
                for fig in figures(line):
                    checked += 1
                    if fig not in known[source]:
                        problems.append(
                            f"{path}:{no}: figure {fig} (region {name}) is not in "
                            f"{RESULTS} region {source}"
                        )
    return problems, checked


# ---------------------------------------------------------------------------------------------
# Self-test


def write(root, path, text):
    full = os.path.join(root, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write(text)


RESULTS_FIXTURE = """# results
<!-- figures:compare -->
Measured 2026-11-30 11:52 UTC on 2 cores.
| wheelbeat | 69.4 | 1.00 |
| DelayQueue | 489 | 7.05 |
- mixed 1000000: wheelbeat / DelayQueue = 0.142 (target <= 0.2): met
<!-- /figures:compare -->
"""

README_FIXTURE = """# crate
Prose may say 30 s or 64 KiB: outside regions nothing is checked.
<!-- figures:compare.table -->
Measured 2026-11-30 11:52 UTC on 2 cores.
| workload | wheelbeat | DelayQueue |
|---|---:|---:|
| mixed, N = 1000000 | **69.4** | 489 (7.05×) |
wheelbeat / DelayQueue = 0.142 on p99-free x86_64 hardware.
<!-- /figures:compare.table -->
"""


def expect(label, problems, want_fail, must_mention=None):
    failed = bool(problems)
    ok = failed == want_fail and (
        must_mention is None or any(must_mention in p for p in problems)
    )
    print(f"  {'ok  ' if ok else 'FAIL'} {label}" + (f": {problems[0]}" if problems else ""))
    return ok


def fixture_case(label, readme, want_fail, must_mention=None, results=RESULTS_FIXTURE):
    with tempfile.TemporaryDirectory() as d:
        write(d, RESULTS, results)
        write(d, "x/README.md", readme)
        return expect(label, check(d)[0], want_fail, must_mention)


def self_test():
    print("self-test on fixtures:")
    assert figures("p99 1.2ms x86_64 u64 v1.2 1,000,000 0.14× 2026-11-30") == [
        "1.2", "1,000,000", "0.14", "2026", "11", "30",
    ], figures("p99 1.2ms x86_64 u64 v1.2 1,000,000 0.14× 2026-11-30")
    results = [
        fixture_case("a README quoting the results passes", README_FIXTURE, False),
        fixture_case(
            "a hand-edited figure fails",
            README_FIXTURE.replace("**69.4**", "**59.4**"),
            True,
            "figure 59.4",
        ),
        fixture_case(
            "a rounded figure fails (figures compare as printed)",
            README_FIXTURE.replace("0.142", "0.14"),
            True,
            "figure 0.14 ",
        ),
        fixture_case(
            "a region from another run (other time stamp) fails",
            README_FIXTURE.replace("11:52", "10:07"),
            True,
            "figure 10",
        ),
        fixture_case(
            "a region naming no RESULTS source fails",
            README_FIXTURE.replace("figures:compare.", "figures:loopbench."),
            True,
            "has no region loopbench",
        ),
        fixture_case(
            "an unclosed region fails",
            README_FIXTURE.replace("<!-- /figures:compare.table -->", ""),
            True,
            "never closed",
        ),
        fixture_case(
            "a malformed marker fails",
            README_FIXTURE.replace("<!-- figures:compare.table -->", "<!-- figures: compare -->"),
            True,
            "malformed",
        ),
        fixture_case(
            "a README region without .PART fails",
            README_FIXTURE.replace("compare.table", "compare"),
            True,
            "SOURCE.PART",
        ),
        fixture_case(
            "numbers outside regions are not figures",
            README_FIXTURE.replace("30 s", "31 s"),
            False,
        ),
    ]
    print("self-test on a copy of this tree:")
    problems, checked = check(ROOT)
    results.append(expect(f"the tree passes ({checked} README figures)", problems, False))
    results.append(checked > 0 or expect("the tree has README figure regions", ["none"], False))
    results.append(tree_edit_case())
    if not all(results):
        print("self-test FAILED")
        return 1
    print("self-test passed")
    return 0


def tree_edit_case():
    """Copies the real READMEs and RESULTS.md, changes the last digit of the first README region
    figure whose edited value the RESULTS region does not hold (a hand edit), and expects
    exactly that line and figure to be reported."""
    with open(os.path.join(ROOT, RESULTS)) as f:
        results_text = f.read()
    known = {
        name: {fig for _, line in body for fig in figures(line)}
        for name, body in regions(results_text, RESULTS).items()
    }
    with tempfile.TemporaryDirectory() as d:
        write(d, RESULTS, results_text)
        target = None
        for path in readmes(ROOT):
            with open(os.path.join(ROOT, path)) as f:
                text = f.read()
            if target is None:
                target, text = edit_one_figure(text, path, known)
            write(d, path, text)
        if target is None:
            return expect("a hand edit in the tree is caught", ["no README figure found"], False)
        path, no, old, new = target
        problems, _ = check(d)
        return expect(
            f"editing {old} -> {new} at {path}:{no} is caught",
            problems,
            True,
            f"{path}:{no}: figure {new} ",
        )


def edit_one_figure(text, path, known):
    """(path, line number, old, new) and the edited text, or (None, text)."""
    lines = text.split("\n")
    # Prefer a measured figure (a decimal, not on the stamp line) to a date or a count.
    candidates = [
        (name, no, line, m)
        for name, body in regions(text, path).items()
        for no, line in body
        for m in FIGURE.finditer(line)
    ]
    candidates.sort(key=lambda c: ("." not in c[3].group(0) or c[2].startswith("Measured")))
    for name, no, line, m in candidates:
        old = m.group(0)
        for step in range(1, 10):
            new = old[:-1] + str((int(old[-1]) + step) % 10)
            if new not in known.get(name.split(".")[0], ()):
                lines[no - 1] = line[: m.start()] + new + line[m.end() :]
                return (path, no, old, new), "\n".join(lines)
    return None, text


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    if sys.argv[1:]:
        print(__doc__)
        return 2
    problems, checked = check(ROOT)
    for p in problems:
        print(p)
    if problems:
        print(
            f"figures check: {len(problems)} problem(s). Figures in README regions are generated: "
            "rerun benches/figures.sh (or --from-logs) rather than editing them."
        )
        return 1
    print(f"figures check: {checked} README figures, all in {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
