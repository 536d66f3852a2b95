"""CPU per page counted in instructions: the floor crawl under valgrind, free of the machine's noise.

The CPU time of a crawl swings by 10-30 % from run to run on a shared machine, ten times the
0.1 ms a page that ``crawl.py --scenario floor`` looks for. Instructions do not swing:
valgrind (cachegrind, no cache simulation) counts every instruction the crawl process
executes, whatever else the machine does. Each stack crawls ``SHORT`` and then ``LONG``
pages of crawl.py's ``floor`` scenario (5,000 healthy proxies on 127.0.0.1, no cooldown, 10
sites), and ``(I(LONG) - I(SHORT)) / (LONG - SHORT)`` is its instructions per page, with
start-up and close cancelled out. A stack's excess over ``random-choice`` (a bare middleware
that sets a random proxy from the list) is then put in milliseconds at random-choice's own
rate: its instructions per millisecond of CPU, from the same crawl of ``LONG`` pages run
without valgrind in this run (the CPU time includes the kernel's, which valgrind does not
count: the milliseconds come out a little high, never low).

The counts still move with the event loop's turns (how the farm's answers bunch up): a stack's
excess moved by up to 0.2M instructions a page (0.04 ms) between runs of the same code. With
``--repeat N`` each stack crawls N times in rounds (every stack once, then again), and the table
gives the median of the rounds' excesses, with their range.

    python benchmarks/instructions.py [--repeat 3] [--pages 300,1500] [--stacks "random-choice,round_robin cooldown 0"]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_spec = importlib.util.spec_from_file_location("crawl_bench", ROOT / "benchmarks" / "crawl.py")
assert _spec is not None and _spec.loader is not None
crawl = importlib.util.module_from_spec(_spec)
sys.modules["crawl_bench"] = crawl  # (its dataclasses look their module up)
_spec.loader.exec_module(crawl)

from scrapy_proxybalance.testing.farm import Farm, ProxySpec  # noqa: E402

BASELINE = "random-choice"
STACKS = [BASELINE, "weighted_random cooldown 0", "round_robin cooldown 0"]
TARGET_MS = 0.1  # the most CPU a page may cost above random-choice's


def job_for(stack: crawl.Stack, farm: Farm, pages: int, out: Path) -> dict:
    """crawl.py's child job for ``pages`` pages of the floor scenario by ``stack``."""
    scenario = floor()
    pool = [s.url for s in farm.specs if s.name != crawl.PLAIN_PROXY]
    settings = {**crawl.BASE, **scenario.settings, **crawl.stack_settings(stack, pool)}
    return {"settings": settings, "hosts": scenario.hosts, "pages": pages, "proxies": [], "http_proxy": None,
            "profile": None, "out": str(out)}


def floor() -> crawl.Scenario:
    return next(s for s in crawl.SCENARIOS if s.name == "floor")


def run(job: dict, tmp: Path, valgrind: bool) -> tuple[int, float]:
    """One crawl in a child process: (pages fetched, instructions) under valgrind, else
    (pages fetched, CPU seconds)."""
    (tmp / "job.json").write_text(json.dumps(job))
    out = Path(job["out"])
    out.unlink(missing_ok=True)
    command = [sys.executable, str(ROOT / "benchmarks" / "crawl.py"), "--child", str(tmp / "job.json")]
    if valgrind:
        command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={tmp / 'cg.out'}",
                   *command]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode or not out.exists():
        raise SystemExit(f"a crawl failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    ok = json.loads(out.read_text())["ok"]
    if not valgrind:
        return ok, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    counted = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if counted is None:
        raise SystemExit("valgrind printed no instruction count")
    return ok, int(counted.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", default="300,1500", help="SHORT,LONG pages (default: 300,1500)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds (default: 1)")
    parser.add_argument("--stacks", default=",".join(STACKS), help=f"floor stacks (default: {','.join(STACKS)})")
    args = parser.parse_args()
    short, long = (int(n) for n in args.pages.split(","))
    names = [BASELINE, *(n for n in args.stacks.split(",") if n != BASELINE)]
    stacks = {s.name: s for s in floor().all_stacks()}
    unknown = [n for n in names if n not in stacks]
    if unknown or not 0 < short < long:
        parser.error(f"unknown stack {unknown[0]!r}" if unknown else "--pages: SHORT,LONG with 0 < SHORT < LONG")
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian's package valgrind)")
    import scrapy

    repeat = max(1, args.repeat)
    print(f"{time.strftime('%Y-%m-%d')}, Scrapy {scrapy.__version__}, python {sys.version.split()[0]}; floor crawl"
          f" (5,000 proxies, no cooldown), {short} and {long} pages a stack under valgrind, {repeat} round(s)")
    per_page: dict[str, list[float]] = {name: [] for name in names}
    baseline_long: list[float] = []  # random-choice's instructions over LONG pages, each round
    with Farm([*floor().specs(), ProxySpec(crawl.PLAIN_PROXY)]) as farm, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        def crawled(stack: crawl.Stack, pages: int, valgrind: bool) -> tuple[int, float]:
            crawl.reset_farm(farm, [])
            result = run(job_for(stack, farm, pages, folder / "out.json"), folder, valgrind)
            crawl.settle_farm(farm)
            if result[0] != pages:
                raise SystemExit(f"{stack.name}: {result[0]} of {pages} pages fetched")
            return result

        for _ in range(repeat):
            for name in names:
                counts = [crawled(stacks[name], n, valgrind=True)[1] for n in (short, long)]
                per_page[name].append((counts[1] - counts[0]) / (long - short))
                if name == BASELINE:
                    baseline_long.append(counts[1])
        cpu = crawled(stacks[BASELINE], long, valgrind=False)[1]
    baseline_instructions = statistics.median(baseline_long)
    rate = baseline_instructions / (cpu * 1000)  # random-choice's instructions a millisecond of CPU
    base = statistics.median(per_page[BASELINE])
    print(f"\nrandom-choice runs {rate / 1e6:.2f}M instructions a millisecond of CPU ({long} pages:"
          f" {baseline_instructions / 1e9:.2f}G instructions in {cpu:.2f} s)\n")
    print("| stack | instructions a page | above random-choice (rounds) | as CPU a page (rounds) | "
          f"<= {TARGET_MS:g} ms |")
    print("|---|---|---|---|---|")
    for name, counts in per_page.items():
        excesses = [c - b for c, b in zip(counts, per_page[BASELINE], strict=True)]  # each round's own
        excess, low, high = statistics.median(excesses), min(excesses), max(excesses)
        ms = excess / rate
        verdict = "-" if name == BASELINE else ("yes" if ms <= TARGET_MS else "no")
        print(f"| {name} | {statistics.median(counts) / 1e6:.3f}M | {excess / 1e6:+.3f}M ({excess / base:+.1%};"
              f" {low / 1e6:+.3f}M to {high / 1e6:+.3f}M) | {ms:+.3f} ms ({low / rate:+.3f} to {high / rate:+.3f}) |"
              f" {verdict} |")


if __name__ == "__main__":
    main()
