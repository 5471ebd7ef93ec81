"""Summarises an Autobahn|Testsuite report (index.json): counts per verdict, the cases that
are not OK with their reasons, and exit status 1 if any case FAILED or none ran.

Usage: python3 tests/interop/autobahn_summary.py reports/index.json
"""
import json
import os
import sys
from collections import Counter


def case_key(case):
    return tuple(int(p) for p in case.split("."))


def main(path):
    with open(path) as f:
        index = json.load(f)
    failed = 0
    for agent, cases in sorted(index.items()):
        counts = Counter(r["behavior"] for r in cases.values())
        close_counts = Counter(r["behaviorClose"] for r in cases.values())
        total = sum(counts.values())
        print(f"autobahn: {agent}: {total} cases")
        for verdict in ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]:
            print(f"  {verdict:14} {counts.get(verdict, 0)}")
        print("  closing behaviour: " + ", ".join(f"{k} {v}" for k, v in sorted(close_counts.items())))
        for case in sorted(cases, key=case_key):
            r = cases[case]
            if r["behavior"] != "OK" or r["behaviorClose"] != "OK":
                detail = ""
                report = os.path.join(os.path.dirname(path), r.get("reportfile", ""))
                if os.path.isfile(report):
                    with open(report) as f:
                        detail = json.load(f).get("result", "")
                print(f"  {case}: {r['behavior']} / close {r['behaviorClose']}: {detail}")
        failed += counts.get("FAILED", 0) + close_counts.get("FAILED", 0)
        if total == 0:
            failed += 1
    return 1 if failed or not index else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
