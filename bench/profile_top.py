"""Summarize a py-spy raw (collapsed stacks) profile: samples per thread, top self and total costs.

    py-spy record --format raw --threads --subprocesses --nonblocking --pid PID -o prof.txt
    python bench/profile_top.py prof.txt [--top 25] [--thread decode]

`--idle` keeps samples whose leaf is a wait (lock, select, epoll, queue get); by default they are
dropped so percentages are of CPU-ish time. Shares are of all kept samples.
"""

from __future__ import annotations

import argparse
import collections
import re

_IDLE = re.compile(r"\b(wait|_wait_for_tstate_lock|select|poll|epoll|acquire|get|sleep|_worker \(concurrent/futures/process)\b")


def _frames(stack: str) -> tuple[str, str, list[str]]:
    parts = stack.split(";")
    process = parts[0] if parts[0].startswith("process ") else ""
    if process:
        parts = parts[1:]
    thread = ""
    if parts and parts[0].startswith("thread "):
        thread = parts[0]
        parts = parts[1:]
    return process, thread, parts


def _short(frame: str) -> str:
    return re.sub(r" \((?:/[^)]*/)?(?:site-packages/)?([^)]*)\)", r" (\1)", frame)


def summarize(path: str, top: int = 25, thread_filter: str | None = None, keep_idle: bool = False) -> str:
    threads: collections.Counter[str] = collections.Counter()
    self_cost: collections.Counter[str] = collections.Counter()
    total_cost: collections.Counter[str] = collections.Counter()
    kept = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            process, thread, frames = _frames(stack)
            if not frames:
                continue
            if not keep_idle and _IDLE.search(frames[-1].split(" (")[0]):
                continue
            name = re.sub(r"\(\d+\)", "", thread.replace("thread ", "")).strip() or "?"
            name = re.sub(r"_\d+$", "", name)
            pid = re.search(r"process (\d+)", process)
            key = f"{name} [pid {pid.group(1)}]" if pid else name
            if thread_filter and thread_filter not in key:
                continue
            threads[key] += n
            kept += n
            self_cost[_short(frames[-1])] += n
            for frame in set(frames):
                total_cost[_short(frame)] += n
    if not kept:
        return "no samples"
    out = [f"{kept} samples (idle waits {'kept' if keep_idle else 'dropped'})", "by thread:"]
    out += [f"  {n / kept:6.1%}  {t}" for t, n in threads.most_common()]
    out.append(f"top {top} self:")
    out += [f"  {n / kept:6.1%}  {fr}" for fr, n in self_cost.most_common(top)]
    out.append(f"top {top} total (inclusive):")
    out += [f"  {n / kept:6.1%}  {fr}" for fr, n in total_cost.most_common(top)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--thread", help="only threads whose name contains this")
    parser.add_argument("--idle", action="store_true", help="keep samples that are waiting")
    args = parser.parse_args()
    print(summarize(args.profile, args.top, args.thread, args.idle))


if __name__ == "__main__":
    main()
