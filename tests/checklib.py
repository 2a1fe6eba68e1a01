"""Runs named checks and reports them the way every checker here does:
one line per check, then "N passed, N failed"."""


def run_checks(checks):
    """CHECKS: (name, callable returning a short summary or None) pairs.
    Returns the exit status: 0 when all passed."""
    passed = failed = 0
    for name, check in checks:
        try:
            summary = check()
            print(f"ok   {name}" + (f": {summary}" if summary else ""))
            passed += 1
        except Exception as e:  # report every kind of failure the same way
            print(f"FAIL {name}: {type(e).__name__}: {e}")
            failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def report_problems(results, shown=20):
    """RESULTS: (name, list of problems) pairs; prints the failing ones and
    the closing line. Returns the exit status."""
    passed = failed = 0
    for name, problems in results:
        if not problems:
            passed += 1
            continue
        failed += 1
        print(f"FAIL {name}")
        for p in problems[:shown]:
            print(f"    {p}")
        if len(problems) > shown:
            print(f"    ... and {len(problems) - shown} more")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0
