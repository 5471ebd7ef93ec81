#!/usr/bin/env python3
"""Tests of benches/figures.py: its parsers on the shapes the binaries print, region rewriting
(text outside the markers untouched, idempotent), and that what it writes passes
.ci/figures_check.py while a hand edit afterwards does not.

Run: python3 benches/figures_test.py   (no cargo, no benchmark: fixtures only)
"""

import importlib.util
import json
import os
import shutil
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


figures = load("figures", os.path.join(HERE, "figures.py"))
check = load("figures_check", os.path.join(HERE, "..", ".ci", "figures_check.py"))

COMPARE = """# compare: 3 rounds, big N = 1000000, re-arm 20000 x 100, seed 0x776865656c

### mixed, N = 1000000 (ms total)

| contender | ms | x wheelbeat |
|---|---:|---:|
| wheelbeat | 59.9 | 1.00 |
| BinaryHeap | 933 | 15.56 |
| DelayQueue | 982 | 16.38 |
| nexus-timer | 354 | 5.90 |

### re-arm heavy: 20000 timers x 100 later-resets

| contender | ns per reset | x wheelbeat | ms total | x wheelbeat |
|---|---:|---:|---:|---:|
| wheelbeat | 4.64 | 1.00 | 9.86 | 1.00 |
| BinaryHeap | 32.6 | 7.03 | 66.8 | 6.77 |
| DelayQueue | 86.2 | 18.60 | 177 | 17.93 |
| nexus-timer | 21.1 | 4.55 | 42.7 | 4.33 |

wheelbeat `Wheel<()>` (no payload): 31.6 bytes per pending timer

### targets (issue 5)

- mixed 1000000: wheelbeat / BinaryHeap = 0.064 (target <= 0.5): met
- mixed 1000000: wheelbeat / DelayQueue = 0.061 (target <= 0.2): met
"""

CRITERION = """decode/line_64B         time:   [20.363 \u00b5s 22.328 \u00b5s 24.423 \u00b5s]
                        thrpt:  [2.4991 GiB/s 2.7335 GiB/s 2.9973 GiB/s]
                 change: [-3.1% +0.2% +4.0%] (p = 0.91 > 0.05)
Found 7 outliers among 100 measurements (7.00%)
decode/length_67B       time:   [2.8685 \u00b5s 3.0383 \u00b5s 3.2125 \u00b5s]
                        thrpt:  [19.890 GiB/s 21.030 GiB/s 22.275 GiB/s]
                 change:
                        time:   [\u221253.606% \u221226.828% +7.1813%] (p = 0.32 > 0.05)
                        thrpt:  [\u22126.7002% +36.664% +115.55%]
                        No change in performance detected.
Performance has improved.
read_path/loopback_64B_lines
                        time:   [48.176 \u00b5s 55.593 \u00b5s 64.474 \u00b5s]
                        thrpt:  [969.39 MiB/s 1.0979 GiB/s 1.2669 GiB/s]
"""

LOOPBENCH = """# loopbench: 2000 pairs, interval 1ms, warm-up 1s, window 4s, 1 round(s)
round 0     floor:     46495 rt/s   13760 ns cpu/rt     213 B rss/pair     114 B heap/pair  failures 0

| mode | round trips/s | x floor | CPU ns per heartbeat | x tokio | failures |
|---|---:|---:|---:|---:|---:|
| floor | 46495 | 1.00 | 13760 | 0.81 | 0 |
| wheelbeat | 21588 | 0.46 | 18064 | 1.06 | 0 |
| tokio | 26154 | 0.56 | 16997 | 1.00 | 0 |

### targets (issue 5)

- wheelbeat round trips/s = 0.46x the floor (target >= 0.9): MISSED
"""

DEMO = "\n".join(
    ["demo: 5000 connections -> bound 2.61s", "connected 5000 pairs in 410.2ms"]
    + [f"t=  {t}.0s  conns   5000  pings/s    51{t}4  dead     0" for t in range(1, 3)]
    + ["t=  3.0s  froze 500 clients, closed 250 clients"]
    + [f"t=  {t}.0s  conns   4250  pings/s    43{t}4  dead   500  frozen detected 500/500" for t in range(3, 9)]
    + ["", "summary (5000 connections, 9.02s)", "  false positives         0", "PASS"]
)

CAPACITY_STDERR = """   Compiling wheelbeat-timer v0.1.0
1000000 timers: 31602112 bytes, 31 bytes per timer
10000000 timers: 300838944 bytes, 30 bytes per timer
"""

SCALE = """scale: server pid 1 listening on 127.0.0.1:7000; logs in /tmp/x

| figure | value |
|---|---|
| server CPU over the window | 9.1% of one core |
| server RSS per connection | 410 bytes (delta 2003 kB / 5000) |

| loader | done line |
|---|---|
| load0 | 5000 connected |
scale: OK
"""


class FakeRun:
    def __init__(self, stdout, stderr="", label="", cmd="cmd --quick", exit=0):
        self.stdout, self.stderr, self.label, self.cmd, self.exit = stdout, stderr, label, cmd, exit
        self.seconds, self.load = 1.5, "0.50 0.40 0.30"

    @property
    def ok(self):
        return self.exit == 0


META = {
    "date": "2026-11-30 11:52 UTC",
    "commit": "abc1234",
    "machine": "2 cores, AMD EPYC",
    "rustc": "rustc 1.95.0",
}


class Parsers(unittest.TestCase):
    def test_compare_tables_pair_each_value_with_its_ratio(self):
        tables = figures.compare_tables(FakeRun(COMPARE))
        self.assertEqual([t[0] for t in tables][0], "mixed, N = 1000000 (ms total)")
        title, cols, values, order = tables[1]
        self.assertEqual(cols, ["ns per reset", "ms total"])
        self.assertEqual(values["DelayQueue"], [("86.2", "18.60"), ("177", "17.93")])
        self.assertEqual(order, ["wheelbeat", "BinaryHeap", "DelayQueue", "nexus-timer"])

    def test_timer_view_keeps_only_the_heaps_and_delay_queue(self):
        body = figures.render_compare_timer(META, [FakeRun(COMPARE)])
        self.assertIn("| workload | wheelbeat | BinaryHeap | DelayQueue |", body)
        self.assertNotIn("nexus", body)
        self.assertIn("| **59.9** | 933 (15.56×) | 982 (16.38×) |", body)

    def test_criterion_names_on_their_own_line_are_kept(self):
        results = figures.criterion_results(FakeRun(CRITERION))
        self.assertEqual(
            [r[0] for r in results],
            ["decode/line_64B", "decode/length_67B", "read_path/loopback_64B_lines"],
        )
        # A `change:` block (against the previous run) is not a result.
        self.assertEqual(results[1][1], ["2.8685 \u00b5s", "3.0383 \u00b5s", "3.2125 \u00b5s"])
        self.assertEqual(results[1][2][2], "22.275 GiB/s")
        self.assertEqual(results[2][1][1], "55.593 \u00b5s")
        self.assertEqual(results[2][2][0], "969.39 MiB/s")

    def test_demo_excerpt_keeps_first_two_fault_and_last_three_live_lines(self):
        out = figures.demo_excerpt(FakeRun(DEMO)).splitlines()
        live = [l for l in out if l.startswith("t=")]
        self.assertEqual(len(live), 2 + 1 + 3)
        self.assertIn("t=  3.0s  froze 500 clients, closed 250 clients", live)
        self.assertEqual(out.count("..."), 1)
        self.assertEqual(out[-1], "PASS")

    def test_capacity_divides_the_printed_totals(self):
        lines = figures.capacity_lines(FakeRun("", CAPACITY_STDERR))
        self.assertEqual(max(lines), (10000000, 300838944))
        self.assertEqual(figures.per_timer(10000000, 300838944), "30.1")

    def test_changed_output_is_a_format_error_not_a_figure(self):
        for parse in (figures.compare_tables, figures.criterion_results, figures.demo_excerpt,
                      figures.loopbench_title, figures.scale_table, figures.capacity_lines):
            with self.assertRaises(figures.FormatError, msg=parse.__name__):
                parse(FakeRun("nothing recognisable\n"))


class Running(unittest.TestCase):
    def test_a_command_past_its_timeout_is_stopped_with_its_children(self):
        saved = figures.RUN_TIMEOUT_S
        figures.RUN_TIMEOUT_S = 1
        with tempfile.TemporaryDirectory() as d:
            pidfile = os.path.join(d, "pid")
            try:
                # The grandchild stands for a script's server: it must not outlive the run.
                out, _, code = figures.run_bounded(
                    f"sh -c 'echo started; sleep 300 & echo $! > {pidfile}; wait'"
                )
            finally:
                figures.RUN_TIMEOUT_S = saved
            self.assertEqual(out, "started\n")
            self.assertTrue(str(code).startswith("timed out"), code)
            with open(pidfile) as f:
                pid = int(f.read())
            deadline = time.monotonic() + 5
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.01)  # waiting for init to reap it, with a deadline
            self.assertFalse(alive(pid), f"grandchild {pid} survived")

    def test_exit_status_and_output_are_kept(self):
        out, err, code = figures.run_bounded("sh -c 'echo out; echo err >&2; exit 3'")
        self.assertEqual((out, err, code), ("out\n", "err\n", 3))


def alive(pid):
    """Whether pid is a live (not zombie) process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Regions(unittest.TestCase):
    TEXT = "intro 42\n<!-- figures:x.y -->\nold 1\n<!-- /figures:x.y -->\noutro 7\n"

    def test_only_the_region_body_changes_and_rewriting_is_idempotent(self):
        once = figures.rewrite(self.TEXT, "R", {"x.y": "new 2"})
        self.assertEqual(once, "intro 42\n<!-- figures:x.y -->\n\nnew 2\n\n<!-- /figures:x.y -->\noutro 7\n")
        self.assertEqual(figures.rewrite(once, "R", {"x.y": "new 2"}), once)
        self.assertEqual(figures.rewrite(self.TEXT, "R", {"other": "z"}), self.TEXT)

    def test_bad_markers_are_refused(self):
        for bad in (
            "<!-- figures:a -->\n<!-- figures:b -->\n<!-- /figures:b -->\n<!-- /figures:a -->\n",
            "<!-- figures:a -->\n",
            "<!-- figures:a -->\n<!-- /figures:a -->\n<!-- figures:a -->\n<!-- /figures:a -->\n",
            "<!-- figures: a -->\n",
        ):
            with self.assertRaises(ValueError):
                figures.find_regions(bad, "R")


class EndToEnd(unittest.TestCase):
    """Renders a small tree from fake logs with the real code, then runs the real check."""

    def setUp(self):
        self.root = tempfile.mkdtemp()
        self.logs = os.path.join(self.root, "logs")
        os.makedirs(self.logs)
        os.makedirs(os.path.join(self.root, "benches"))
        os.makedirs(os.path.join(self.root, "timer"))
        regions = "".join(
            f"<!-- figures:{n} -->\n<!-- /figures:{n} -->\n" for n in ("compare", "loopbench", "scale")
        )
        self.write("benches/RESULTS.md", "# results\nhand-written 1.23\n" + regions)
        self.write(
            "timer/README.md",
            "# timer\nprose 99\n<!-- figures:compare.timer -->\n<!-- /figures:compare.timer -->\n"
            "<!-- figures:compare.targets -->\n<!-- /figures:compare.targets -->\n"
            "<!-- figures:loopbench.table -->\n<!-- /figures:loopbench.table -->\n"
            "<!-- figures:scale.table -->\n<!-- /figures:scale.table -->\nend\n",
        )
        meta = dict(META, runs={})
        for name, out in (("compare", COMPARE), ("loopbench", LOOPBENCH), ("scale", SCALE)):
            meta["runs"][name] = [
                {"label": "", "cmd": f"cargo run {name}", "exit": 0, "seconds": 2.5, "load": "1.00 0.50 0.25"}
            ]
            self.write(f"logs/{name}.0.stdout", out)
            self.write(f"logs/{name}.0.stderr", "")
        self.write("logs/meta.json", json.dumps(meta))
        self.saved = figures.ROOT
        figures.ROOT = self.root

    def tearDown(self):
        figures.ROOT = self.saved
        shutil.rmtree(self.root)

    def write(self, path, text):
        with open(os.path.join(self.root, path), "w") as f:
            f.write(text)

    def read(self, path):
        with open(os.path.join(self.root, path)) as f:
            return f.read()

    def test_generated_regions_pass_the_check_and_a_hand_edit_fails_it(self):
        meta, runs = figures.load_logs(self.logs)
        for path, text in figures.render_all(meta, runs).items():
            self.write(path, text)
        readme = self.read("timer/README.md")
        self.assertTrue(readme.startswith("# timer\nprose 99\n") and readme.endswith("\nend\n"))
        self.assertIn("**59.9**", readme)
        self.assertIn("| 9.1% of one core |", readme)
        self.assertIn("hand-written 1.23", self.read("benches/RESULTS.md"))
        problems, checked = check.check(self.root)
        self.assertEqual(problems, [])
        self.assertGreater(checked, 20)
        self.write("timer/README.md", readme.replace("**59.9**", "**49.9**"))
        problems, _ = check.check(self.root)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("figure 49.9", problems[0])


if __name__ == "__main__":
    unittest.main()
