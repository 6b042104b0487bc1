"""Where `make book`'s time goes: per chapter and per stage, cold and warm results cache.

Builds the book twice into a scratch folder with a results cache of its own: first empty
(cold: everything trains), then again (warm: everything is read from the cache). For each
chapter it splits the wall time by the kind of cell, read from papermill's per-cell
durations: *compute* cells (training, influence estimates, attacks; tagged
``remove-stderr``), *figures and tables* (``remove-input``), and the rest (imports,
parameters, prose). The last row is the Jupyter Book render. Peak memory is the largest
resident set of this process and its children. On a shared machine wall times scale with the
load, so it also prints the load average before and after and the CPU seconds the build
used (this process and its children), which the load inflates far less.

    python benchmarks/book_stages.py                    # default profile (minutes)
    python benchmarks/book_stages.py --profile smoke    # seconds; what the tests run
    python benchmarks/book_stages.py --fresh-clone      # issue 16's budget: `make book` in a fresh clone

``--fresh-clone`` measures what issue 16 budgets (cold <= 15 min including the venv, warm
<= 2 min, peak memory < 8 GiB): it clones the repository's committed HEAD into a scratch
folder and times, there, ``make .venv/.installed`` (the venv: pip installs requirements.txt),
then ``make book`` twice (cold: empty ./results; warm), with ``SHARPMEM_RESULTS`` unset so
the clone's own results folder is used. Peak memory is the largest resident set of any one
child process.

Figures, not a timed test.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import nbformat

from sharpmem_lib.pipeline import build_book

STAGES = {"remove-stderr": "compute", "remove-input": "figures & tables"}


def cell_stages(executed: Path) -> dict[str, float]:
    """Seconds per stage of one executed notebook, from papermill's cell metadata."""
    nb = nbformat.read(executed, as_version=4)
    out: dict[str, float] = {"compute": 0.0, "figures & tables": 0.0, "other": 0.0}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        duration = cell.metadata.get("papermill", {}).get("duration") or 0.0
        stage = next((STAGES[t] for t in cell.metadata.get("tags", []) if t in STAGES), "other")
        out[stage] += float(duration)
    return out


def build(profile: str, root: Path) -> tuple[dict[str, float], dict[str, dict[str, float]], float]:
    times: dict[str, float] = {}
    start = time.perf_counter()
    build_book(profile, root, log=lambda msg: _collect(msg, times))
    total = time.perf_counter() - start
    notebooks = root / "_build" / "source" / "notebooks"
    stages = {p.stem: cell_stages(p) for p in sorted(notebooks.glob("[0-9][0-9]_*.ipynb"))}
    return times, stages, total


def _collect(msg: str, times: dict[str, float]) -> None:
    if msg.startswith("wall time per stage: "):
        for part in msg.removeprefix("wall time per stage: ").split(", "):
            name, value, _ = part.rsplit(" ", 2)
            times[name] = float(value)


REPO_ROOT = Path(__file__).resolve().parents[1]


def fresh_clone(profile: str, root: Path) -> dict[str, float]:
    """Seconds of the venv, a cold and a warm ``make book`` in a fresh clone of HEAD under ``root``."""
    clone = root / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("SHARPMEM_RESULTS", "VIRTUAL_ENV")}
    times = {}
    for stage, target in (("venv", [".venv/.installed"]), ("cold book", ["book", f"PROFILE={profile}"]),
                          ("warm book", ["book", f"PROFILE={profile}"])):
        start = time.perf_counter()
        subprocess.run(["make", *target], cwd=clone, env=env, check=True)
        times[stage] = time.perf_counter() - start
    return times


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default")
    parser.add_argument("--fresh-clone", action="store_true",
                        help="time the venv and make book (cold, warm) in a fresh clone of HEAD")
    args = parser.parse_args(argv)
    if args.fresh_clone:
        load_before = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(prefix="sharpmem-clone-") as tmp:
            times = fresh_clone(args.profile, Path(tmp))
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        print(f"profile {args.profile}, fresh clone of HEAD; load average {load_before:.1f} before, "
              f"{os.getloadavg()[0]:.1f} after; {os.cpu_count()} CPUs")
        for stage, seconds in times.items():
            print(f"{stage:26s} {seconds:7.1f} s")
        cold = times['venv'] + times['cold book']
        print(f"{'cold incl. venv':26s} {cold:7.1f} s (issue 16: <= 900 s; warm <= 120 s)")
        print(f"peak resident memory of one process: {peak:.2f} GiB (issue 16: < 8 GiB)")
        return times
    results = {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="sharpmem-bench-") as tmp:
        os.environ["SHARPMEM_RESULTS"] = str(Path(tmp) / "results")
        for cache in ("cold", "warm"):
            times, stages, total = build(args.profile, Path(tmp) / cache)
            results[cache] = (times, stages, total)
    cpu = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for f in ("ru_utime", "ru_stime"))
    print(f"profile {args.profile}; seconds (cold = empty results cache, warm = everything cached); load average "
          f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after; {os.cpu_count()} CPUs")
    print(f"{'chapter':26s} {'cold':>7s} {'compute':>8s} {'figures':>8s} {'other':>6s} {'warm':>7s}")
    cold_t, cold_s, cold_total = results["cold"]
    warm_t, _, warm_total = results["warm"]
    for name, seconds in cold_t.items():
        s = cold_s.get(name, {})
        cells = (f"{s['compute']:8.1f} {s['figures & tables']:8.1f} {s['other']:6.1f}" if s
                 else f"{'':8s} {'':8s} {'':6s}")
        print(f"{name:26s} {seconds:7.1f} {cells} {warm_t.get(name, float('nan')):7.1f}")
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print(f"{'total (wall)':26s} {cold_total:7.1f} {'':8s} {'':8s} {'':6s} {warm_total:7.1f}")
    print(f"peak resident memory of one process: {peak / 2**20:.2f} GiB")
    print(f"CPU seconds, cold and warm builds together: {cpu:.0f}")
    return results


if __name__ == "__main__":
    main()
