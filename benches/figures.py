#!/usr/bin/env python3
"""Reruns the quick benchmarks and rewrites every generated figure region from their output.

Run it through `benches/figures.sh` (same arguments). It:

1. builds what the selected sources need (so no compile time lands inside a measurement);
2. runs each source's commands (below) one after the other, recording what they printed, the
   exit status, the wall time and the load average at the start of each command, into a log
   directory (`$CARGO_TARGET_DIR/figures/<UTC time>/`, or `target/figures/...`);
3. renders every generated region from those logs and rewrites the files in place.

# Regions

A generated region is everything between two marker lines, each alone on its line:

    <!-- figures:NAME -->
    ... generated, never edited by hand ...
    <!-- /figures:NAME -->

In `benches/RESULTS.md`, NAME is a source (`compare`, `loopbench`, ...): the region holds the
stamp (date, commit, machine line, load average at start), each command and what it printed.
In a README, NAME is `SOURCE.PART` (`compare.table`, `demo.output`, ...): a view of that
source's output, quoting its numbers as the command printed them, with the same stamp, so
`.ci/figures_check.py` can check that every number in it appears in the RESULTS region of
SOURCE. Text outside the markers is never touched; a region whose source was not run this
time (`--only`) is left as it was.

# Ground rules

- Numbers are quoted as printed. The only computed figure is the wheel capacity test's bytes
  per timer (it prints integer totals); its RESULTS region shows the computation.
- A command that exits non-zero is still recorded (a FAIL is a result), and the script then
  exits 1. An output that no longer parses (a binary changed its format) aborts before any
  file is written, naming the source: fix the parser here, never the figures.

Usage:
    benches/figures.sh                      # everything, a few minutes
    benches/figures.sh --only compare,demo  # some sources; the other regions stay
    benches/figures.sh --from-logs DIR      # re-render from a previous run's logs, no rerun
    benches/figures.sh --dry-run            # print the rendered regions, write nothing
    benches/figures.sh --list               # the sources, their commands and regions
"""

import argparse
import datetime
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
RESULTS = "benches/RESULTS.md"

# Each source: the commands it runs (a label and the exact command line) and the build step
# that precedes them. The commands are what the regions quote, so keep them copy-pasteable.
SOURCES = {
    "compare": {
        "build": "cargo build --release -p wheelbeat-benches --bin compare",
        "runs": [("", "cargo run --release -p wheelbeat-benches --bin compare -- --quick")],
    },
    "capacity": {
        "build": "cargo test --release -p wheelbeat-timer --test wheel_capacity --no-run",
        "runs": [
            (
                "",
                "cargo test --release -p wheelbeat-timer --test wheel_capacity -- "
                "--include-ignored --nocapture",
            )
        ],
    },
    "loopbench": {
        "build": "cargo build --release -p wheelbeat-benches --bin loopbench",
        "runs": [
            ("flat out", "cargo run --release -p wheelbeat-benches --bin loopbench -- --quick"),
            (
                "equal load",
                "cargo run --release -p wheelbeat-benches --bin loopbench -- --quick "
                "--interval 200ms",
            ),
        ],
    },
    "net": {
        "build": "cargo bench -p wheelbeat-net --bench net --no-run",
        "runs": [
            (
                "",
                "cargo bench -p wheelbeat-net --bench net -- --warm-up-time 1 "
                "--measurement-time 2 --noplot",
            )
        ],
    },
    "simulate": {
        "build": "cargo build --release -p wheelbeat-heartbeat --example simulate",
        "runs": [
            (
                "",
                "cargo run --release -p wheelbeat-heartbeat --example simulate -- "
                "--conns 100000",
            )
        ],
    },
    "scale": {
        "build": "cargo build --release -p wheelbeat-heartbeat --example server --example load",
        "runs": [("", "env CONNS=5000 DURATION=15s LOADERS=1 RAMP_BUDGET=15s NO_BUILD=1 benches/scale/run.sh")],
    },
    "connbench": {
        "build": "cargo build --release -p wheelbeat-benches --bin connbench",
        "runs": [("", "cargo run --release -p wheelbeat-benches --bin connbench -- --quick")],
    },
    "million": {
        "build": "cargo build --release -p wheelbeat-timer --example million",
        "runs": [("", "cargo run --release -p wheelbeat-timer --example million")],
    },
    "demo": {
        "build": "cargo build --release -p wheelbeat-heartbeat --example demo",
        "runs": [("", "cargo run --release -p wheelbeat-heartbeat --example demo")],
    },
}

# A command may not run longer than this; the quick runs take well under a minute each.
RUN_TIMEOUT_S = 600

MARKER = re.compile(r"^<!-- (/?)figures:([a-z0-9-]+(?:\.[a-z0-9-]+)?) -->$")


class FormatError(Exception):
    """A command's output no longer has the shape a renderer expects."""


# ---------------------------------------------------------------------------------------------
# Running and logging


def sh(cmd):
    """Output of a short command, or '' if it fails (only for the machine line)."""
    try:
        return subprocess.run(
            cmd, shell=True, cwd=ROOT, capture_output=True, text=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def machine():
    """Cores and CPU model of this machine."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}"


def target_dir():
    return os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")


def run_bounded(cmd):
    """(stdout, stderr, exit code) of `cmd`, which runs in its own process group so that on
    timeout the whole group (a script's servers and loaders included) is stopped: SIGTERM,
    which lets a script's trap clean up, then SIGKILL if it is still there 10 s later."""
    p = subprocess.Popen(
        shlex.split(cmd),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = p.communicate(timeout=RUN_TIMEOUT_S)
        code = p.returncode
    except subprocess.TimeoutExpired:
        out, err = b"", b""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                out, err = p.communicate(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue
        code = f"timed out after {RUN_TIMEOUT_S} s"
    decode = lambda b: (b or b"").decode("utf-8", errors="replace")  # noqa: E731
    return decode(out), decode(err), code


def run_sources(names, log_dir):
    """Builds then runs each source's commands, writing logs and `meta.json` into log_dir."""
    os.makedirs(log_dir, exist_ok=True)
    commit = sh("git rev-parse --short HEAD") or "unknown"
    if sh("git status --porcelain --untracked-files=no"):
        commit += " (with uncommitted changes)"
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "machine": machine(),
        "rustc": sh("rustc --version").split(" (")[0] or "rustc unknown",
        "runs": {},
    }
    for name in names:
        build = SOURCES[name]["build"]
        print(f"== {name}: {build}", flush=True)
        b = subprocess.run(shlex.split(build), cwd=ROOT)
        if b.returncode != 0:
            sys.exit(f"figures: the build for {name} failed; nothing written")
    for name in names:
        meta["runs"][name] = []
        for i, (label, cmd) in enumerate(SOURCES[name]["runs"]):
            load = load_average()
            print(f"== {name}: {cmd}   (load average {load})", flush=True)
            started = time.monotonic()
            stdout, stderr, code = run_bounded(cmd)
            seconds = time.monotonic() - started
            base = os.path.join(log_dir, f"{name}.{i}")
            with open(base + ".stdout", "w") as f:
                f.write(stdout)
            with open(base + ".stderr", "w") as f:
                f.write(stderr)
            meta["runs"][name].append(
                {"label": label, "cmd": cmd, "exit": code, "seconds": round(seconds, 1), "load": load}
            )
            print(f"   exit {code}, {seconds:.1f} s", flush=True)
    with open(os.path.join(log_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)


class Run:
    """One recorded command: what it printed and how it went."""

    def __init__(self, log_dir, name, i, info):
        self.label = info["label"]
        self.cmd = info["cmd"]
        self.exit = info["exit"]
        self.seconds = info["seconds"]
        self.load = info["load"]
        base = os.path.join(log_dir, f"{name}.{i}")
        with open(base + ".stdout") as f:
            self.stdout = f.read()
        with open(base + ".stderr") as f:
            self.stderr = f.read()

    @property
    def ok(self):
        return self.exit == 0


def load_logs(log_dir):
    with open(os.path.join(log_dir, "meta.json")) as f:
        meta = json.load(f)
    runs = {
        name: [Run(log_dir, name, i, info) for i, info in enumerate(infos)]
        for name, infos in meta["runs"].items()
    }
    return meta, runs


# ---------------------------------------------------------------------------------------------
# Parsers: output text -> structures. Each raises FormatError naming what it missed.


def md_tables(text):
    """Markdown tables printed by compare / loopbench: [(title, header, rows)], where title is
    the nearest `### ` heading above (or '') and rows are lists of cell strings."""
    tables, title, lines = [], "", text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("### "):
            title = line[4:].strip()
        if line.startswith("|") and i + 1 < len(lines) and re.match(r"^\|[-:| ]+\|$", lines[i + 1].strip()):
            header = cells(line)
            rows = []
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(cells(lines[i].strip()))
                i += 1
            tables.append((title, header, rows))
            continue
        i += 1
    return tables


def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def bullets_after(text, heading):
    """The `- ` lines under the `### heading` line."""
    out, inside = [], False
    for line in text.splitlines():
        if line.startswith("### "):
            inside = line[4:].strip().startswith(heading)
        elif inside and line.startswith("- "):
            out.append(line[2:].strip())
    return out


def need(value, what, source):
    if not value:
        raise FormatError(f"{source}: no {what} in the output")
    return value


def compare_tables(run):
    """compare's tables as [(title, [value column names], {contender: [(value, ratio)]},
    [contender order])]; the ratio column after each value column is `x wheelbeat`."""
    out = []
    for title, header, rows in md_tables(run.stdout):
        if not header or header[0] != "contender":
            continue
        cols = [header[j] for j in range(1, len(header) - 1, 2) if header[j + 1] == "x wheelbeat"]
        if not cols:
            continue
        values, order = {}, []
        for row in rows:
            pairs = [(row[j], row[j + 1]) for j in range(1, 2 * len(cols), 2)]
            values[row[0]] = pairs
            order.append(row[0])
        out.append((title, cols, values, order))
    return need(out, "contender tables", "compare")


def compare_unit_line(run):
    m = re.search(r"^wheelbeat `Wheel<\(\)>`.*$", run.stdout, re.M)
    return need(m, "`Wheel<()>` bytes line", "compare").group(0)


def capacity_lines(run):
    """(n, total bytes) of each `N timers: B bytes, ...` line the test printed."""
    text = run.stdout + "\n" + run.stderr
    found = [(int(n), int(b)) for n, b in re.findall(r"^(\d+) timers: (\d+) bytes", text, re.M)]
    return need(found, "`N timers: B bytes` lines", "capacity")


def capacity_transcript(run):
    text = run.stdout + "\n" + run.stderr
    keep = re.compile(r"^(\d+ timers: |test |running \d+ test|test result: )")
    return "\n".join(l for l in text.splitlines() if keep.match(l))


def per_timer(n, total):
    return f"{total / n:.1f}"


def criterion_results(run):
    """[(name, [time lo, mid, hi], [thrpt lo, mid, hi] or None)] from criterion's stdout."""
    out, name, pending = [], None, None
    triple = r"\[(\S+ \S+) (\S+ \S+) (\S+ \S+)\]"
    for line in run.stdout.splitlines():
        m = re.match(r"^(\S.*?)\s+time:\s+" + triple, line)
        m2 = re.match(r"^\s+time:\s+" + triple, line)
        t = re.match(r"^\s+thrpt:\s+" + triple, line)
        if m:
            pending = [m.group(1), list(m.groups()[1:]), None]
            out.append(pending)
        elif m2 and name:
            pending = [name, list(m2.groups()), None]
            out.append(pending)
        elif t and pending:
            pending[2] = list(t.groups())
        elif line and not line[0].isspace() and not line.startswith(("Benchmarking", "Found", "Gnuplot")):
            name = line.strip()
    return need(out, "criterion `time:` lines", "net")


def loopbench_table(run):
    for _, header, rows in md_tables(run.stdout):
        if header and header[0] == "mode":
            return header, rows
    raise FormatError("loopbench: no `| mode |` summary table in the output")


def loopbench_title(run):
    m = re.search(r"^# loopbench: (.*)$", run.stdout, re.M)
    return need(m, "`# loopbench:` header line", "loopbench").group(1)


def scale_table(run):
    """The `| figure | value |` table of the scale run's report, as printed."""
    for _, header, rows in md_tables(run.stdout):
        if header[:2] == ["figure", "value"]:
            return header, rows
    raise FormatError("scale: no `| figure | value |` table in the output")


def demo_excerpt(run):
    """The demo's output with the live lines cut to the first two, the fault line and the
    last three, as the READMEs show it."""
    lines = run.stdout.rstrip("\n").splitlines()
    live = [i for i, l in enumerate(lines) if l.startswith("t=")]
    need(live, "live `t=` lines", "demo")
    need([l for l in lines if l.startswith("summary")], "summary", "demo")
    keep = set(range(0, live[0])) | set(live[:2]) | set(live[-3:])
    # The fault line ("froze N clients, closed M clients") is the one live line without a
    # connection count.
    keep |= {i for i in live if "conns" not in lines[i]}
    keep |= set(range(live[-1] + 1, len(lines)))
    out, last = [], -1
    for i in sorted(keep):
        if i != last + 1:
            out.append("...")
        out.append(lines[i])
        last = i
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Renderers: (meta, runs) -> region body.


def stamp(meta, runs):
    loads = ", ".join(r.load for r in runs)
    return (
        f"Measured {meta['date']}, commit {meta['commit']}, {meta['rustc']}, on "
        f"{meta['machine']}; load average at start {loads}."
    )


def status(run):
    return "exit 0" if run.ok else f"**exit {run.exit}**"


def code(text):
    return "```text\n" + text.rstrip("\n") + "\n```"


def results_region(name, meta, runs):
    """The RESULTS.md region of a source: stamp, then each command and what it printed."""
    parts = [stamp(meta, runs)]
    for r in runs:
        label = f"{r.label}: " if r.label else ""
        parts.append(f"{label}`{r.cmd}` ({status(r)}, {r.seconds} s):")
        if name == "capacity":
            parts.append(code(capacity_transcript(r)))
            for n, total in capacity_lines(r):
                parts.append(f"{n} timers: {total} bytes / {n} = {per_timer(n, total)} bytes per timer.")
        elif name == "net":
            parts.append(code(criterion_transcript(r)))
        else:
            parts.append(code(r.stdout))
    return "\n\n".join(parts)


def criterion_transcript(run):
    keep = re.compile(r"^(\S.*\s+time:|\s+(time|thrpt|change):|[^\sB].*)")
    lines = [l for l in run.stdout.splitlines() if l.strip() and keep.match(l)]
    return "\n".join(l for l in lines if not l.startswith(("Benchmarking", "Gnuplot")))


def source_line(runs, note=None):
    """The commands, a note on what is shown, where the full output is."""
    cmds = "; ".join(f"`{r.cmd}`" for r in runs)
    codes = ", ".join(status(r) for r in runs)
    note = f"{codes}; {note}" if note else codes
    return f"{cmds} ({note}). Full output: `benches/RESULTS.md`."


def render_compare_table(meta, runs, keep_contender=None, keep_table=None):
    (run,) = runs
    tables = compare_tables(run)
    if keep_table:
        tables = [t for t in tables if keep_table(t[0])]
    order = tables[0][3]
    if keep_contender:
        order = [c for c in order if keep_contender(c)]
    head = "| workload | " + " | ".join(order) + " |"
    rule = "|---|" + "---:|" * len(order)
    rows = []
    for title, cols, values, _ in tables:
        for k, col in enumerate(cols):
            label = title if len(cols) == 1 else f"{title}: {col}"
            row = []
            for c in order:
                v, ratio = values.get(c, [("n/a", "n/a")] * len(cols))[k]
                row.append(f"**{v}**" if c == "wheelbeat" else f"{v} ({ratio}×)")
            rows.append(f"| {label} | " + " | ".join(row) + " |")
    return "\n".join(
        [stamp(meta, runs), "", source_line(runs, "medians of interleaved rounds"), "",
         head, rule] + rows + ["", compare_unit_line(run)]
    )


def render_compare_timer(meta, runs):
    """The timer README's view: wheelbeat against the heaps and DelayQueue."""
    return render_compare_table(
        meta,
        runs,
        keep_contender=lambda c: c == "wheelbeat" or "BinaryHeap" in c or "DelayQueue" in c,
        keep_table=lambda t: t.startswith(("mixed", "re-arm", "heap bytes")),
    )


def render_compare_targets(meta, runs):
    (run,) = runs
    lines = need(bullets_after(run.stdout, "targets"), "`### targets` lines", "compare")
    return "\n".join([f"Targets, from `{run.cmd}` ({meta['date']}):", ""] + [f"- {l}" for l in lines])


def render_capacity_line(meta, runs):
    (run,) = runs
    n, total = max(capacity_lines(run))
    return (
        f"`Wheel<()>` with {n} pending timers: **{per_timer(n, total)} bytes per timer** "
        f"({total} bytes; `{run.cmd}`, {status(run)}, {meta['date']})."
    )


def render_loopbench_table(meta, runs):
    parts, head = [], None
    rows = []
    for r in runs:
        header, body = loopbench_table(r)
        head = head or header
        if header != head:
            raise FormatError("loopbench: the two runs print different columns")
        for k, row in enumerate(body):
            first = f"{r.label} ({loopbench_title(r)})" if k == 0 else ""
            mode = f"**{row[0]}**" if row[0] == "wheelbeat" else row[0]
            rows.append(f"| {first} | {mode} | " + " | ".join(row[1:]) + " |")
    parts = [stamp(meta, runs), "", source_line(runs), ""]
    parts.append("| run | " + " | ".join(head) + " |")
    parts.append("|---|---|" + "---:|" * (len(head) - 1))
    return "\n".join(parts + rows)


def render_loopbench_targets(meta, runs):
    out = []
    for r in runs:
        lines = need(bullets_after(r.stdout, "targets"), "`### targets` lines", "loopbench")
        if r.label == "equal load":
            # At equal load the floor still runs flat out: a rate ratio to it says nothing.
            lines = [l for l in lines if "the floor" not in l]
        out.append(f"{r.label} (`{r.cmd}`, {meta['date']}):")
        out.append("")
        out += [f"- {l}" for l in lines]
        out.append("")
    return "\n".join(out).rstrip("\n")


def render_net_table(meta, runs):
    (run,) = runs
    rows = [
        "| benchmark | time per batch [low median high] | throughput [low median high] |",
        "|---|---|---|",
    ]
    for name, t, thrpt in criterion_results(run):
        rows.append(f"| `{name}` | {' '.join(t)} | {' '.join(thrpt) if thrpt else ''} |")
    return "\n".join([stamp(meta, runs), "", source_line(runs), ""] + rows)


def render_verbatim(meta, runs):
    (run,) = runs
    return "\n\n".join([stamp(meta, runs), source_line(runs), code(run.stdout)])


def render_scale_table(meta, runs):
    (run,) = runs
    header, rows = scale_table(run)
    lines = [stamp(meta, runs), "", source_line(runs), "", "| " + " | ".join(header) + " |", "|---|---|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def render_connbench_tables(meta, runs):
    """connbench's two tables as printed: the per-mode figures and the ratios to each peer."""
    (run,) = runs
    tables = [t for t in md_tables(run.stdout) if t[1] and t[1][0] in ("mode", "wheelbeat mode")]
    if len(tables) != 2:
        raise FormatError("connbench: expected a `| mode |` table and a `| wheelbeat mode |` table")
    parts = [stamp(meta, runs), "", source_line(runs), ""]
    for _, header, rows in tables:
        parts.append("| " + " | ".join(header) + " |")
        parts.append("|" + "---|" * len(header))
        parts += ["| " + " | ".join(r) + " |" for r in rows]
        parts.append("")
    return "\n".join(parts).rstrip("\n")


def render_demo(meta, runs):
    (run,) = runs
    return "\n\n".join([stamp(meta, runs), source_line(runs, "live lines cut"), code(demo_excerpt(run))])


README_RENDERERS = {
    "compare.table": render_compare_table,
    "compare.timer": render_compare_timer,
    "compare.targets": render_compare_targets,
    "capacity.line": render_capacity_line,
    "loopbench.table": render_loopbench_table,
    "loopbench.targets": render_loopbench_targets,
    "net.table": render_net_table,
    "simulate.output": render_verbatim,
    "million.output": render_verbatim,
    "scale.table": render_scale_table,
    "connbench.tables": render_connbench_tables,
    "demo.output": render_demo,
}


# ---------------------------------------------------------------------------------------------
# Regions


def find_regions(text, path):
    """[(name, first body line index, end marker line index)]; raises ValueError on bad
    nesting, unclosed or duplicate regions."""
    lines = text.split("\n")
    regions, open_name, open_at, seen = [], None, None, set()
    for i, line in enumerate(lines):
        m = MARKER.match(line.strip())
        if not m:
            if line.strip().startswith("<!--") and "figures:" in line:
                raise ValueError(f"{path}:{i + 1}: malformed figures marker: {line.strip()}")
            continue
        closing, name = m.group(1) == "/", m.group(2)
        if not closing:
            if open_name:
                raise ValueError(f"{path}:{i + 1}: region {name} opens inside {open_name}")
            if name in seen:
                raise ValueError(f"{path}:{i + 1}: region {name} appears twice")
            open_name, open_at = name, i + 1
        else:
            if name != open_name:
                raise ValueError(f"{path}:{i + 1}: closes {name} but {open_name} is open")
            regions.append((name, open_at, i))
            seen.add(name)
            open_name = None
    if open_name:
        raise ValueError(f"{path}: region {open_name} is never closed")
    return regions


def rewrite(text, path, bodies):
    """text with the body of each region named in `bodies` replaced; other regions and all
    text outside regions unchanged."""
    lines = text.split("\n")
    for name, start, end in reversed(find_regions(text, path)):
        if name in bodies:
            lines[start:end] = ["", bodies[name], ""]
    return "\n".join(lines)


def files_with_regions():
    """RESULTS.md, then every README.md in the repository (outside target/ and .git)."""
    out = [RESULTS]
    for d, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(x for x in dirs if x not in (".git", "target", "node_modules"))
        if "README.md" in files:
            out.append(os.path.relpath(os.path.join(d, "README.md"), ROOT))
    return out


def render_all(meta, runs):
    """{path: new text} for every file whose regions come from the sources in `runs`."""
    out = {}
    for path in files_with_regions():
        with open(os.path.join(ROOT, path)) as f:
            text = f.read()
        bodies = {}
        for name, _, _ in find_regions(text, path):
            source = name.split(".")[0]
            if source not in SOURCES:
                raise ValueError(f"{path}: region {name}: unknown source {source}")
            if source not in runs:
                continue
            if path == RESULTS:
                if "." in name:
                    raise ValueError(f"{path}: region {name}: RESULTS regions are bare sources")
                bodies[name] = results_region(name, meta, runs[name])
            else:
                if name not in README_RENDERERS:
                    raise ValueError(f"{path}: region {name}: no such view")
                bodies[name] = README_RENDERERS[name](meta, runs[source])
        if bodies:
            new = rewrite(text, path, bodies)
            if new != text:
                out[path] = new
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="comma-separated sources to rerun (default: all)")
    ap.add_argument("--from-logs", metavar="DIR", help="re-render from a previous run's logs")
    ap.add_argument("--dry-run", action="store_true", help="print the new regions only")
    ap.add_argument("--list", action="store_true", help="list sources and commands")
    args = ap.parse_args()
    if args.list:
        for name, s in SOURCES.items():
            print(f"{name}:")
            for label, cmd in s["runs"]:
                print(f"  {label + ': ' if label else ''}{cmd}")
        print("views (README regions):", ", ".join(README_RENDERERS))
        return 0
    if args.from_logs:
        log_dir = args.from_logs
    else:
        names = args.only.split(",") if args.only else list(SOURCES)
        unknown = [n for n in names if n not in SOURCES]
        if unknown:
            sys.exit(f"figures: unknown source(s) {unknown}; known: {list(SOURCES)}")
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        log_dir = os.path.join(target_dir(), "figures", now)
        run_sources(names, log_dir)
    meta, runs = load_logs(log_dir)
    try:
        new = render_all(meta, runs)
    except (FormatError, ValueError) as e:
        sys.exit(f"figures: {e}\nnothing written; the logs are in {log_dir}")
    for path, text in new.items():
        if args.dry_run:
            print(f"===== {path}")
            for name, start, end in find_regions(text, path):
                print(f"--- {name}")
                print("\n".join(text.split("\n")[start:end]))
        else:
            with open(os.path.join(ROOT, path), "w") as f:
                f.write(text)
            print(f"rewrote {path}")
    failed = [f"{n}: {r.cmd} ({r.exit})" for n, rs in runs.items() for r in rs if not r.ok]
    print(f"logs: {log_dir}")
    if failed:
        print("these commands failed; their output was recorded as printed:", *failed, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
