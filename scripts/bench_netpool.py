"""The NetPool under 1, 4 and 16 concurrent clients: today's pool against the one it replaced, side by side.

Each client is a thread of this process asking the pool actor, as an env
runner does, for every one of ``--archs`` networks in its own shuffled order:
the first to ask for a network trains it (a sleep of ``--train-ms``) and puts
its record and ``--weights-kb`` of weights, the others wait for that record or
find it done; then each client reads the network's weights back (a runner
loading the start net, an export). Both pools write to a fresh local folder.

``new`` is `rayneas.eas.netpool` as the search uses it: an async actor, one
appended Parquet part per record, weights under their content hash, waiters
woken by an event, reads in threads. ``old`` is the pool before that,
reimplemented minimally here (`OldPool`, nowhere else): a plain actor that
runs one call at a time and rewrites the whole Parquet table on every put,
with waiters asking again every 0.1 s. Per put, the old table rewrite grows
with the records already kept, so a run's writes grow with the square of its
children; ``put ms (last 10%)`` shows that cost at the end of the run.

    python scripts/bench_netpool.py                       # 1, 4, 16 clients, 1000 networks
    python scripts/bench_netpool.py --clients 16 --archs 3000
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import platform
import random
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq
import ray

from rayneas.config import to_dict
from rayneas.eas.config import EASEnvConfig
from rayneas.eas.netpool import NetRecord, call, evaluate_once, netpool_actor
from rayneas.eas.netpool_files import SCHEMA

POLL_S = 0.1  # the old pool's waiters asked again this often
#: A record's setting as long as a search's (it names the whole child training config).
SETTING = json.dumps({"role": "child", **to_dict(EASEnvConfig())}, sort_keys=True)


class OldPool:
    """The pool before appends, reduced to what the benchmark calls: claims, put, weights (same table)."""

    def __init__(self, folder: str) -> None:
        self.table = Path(folder) / "netpool.parquet"
        self.weights_dir = Path(folder) / "netpool.weights"
        self.weights_dir.mkdir(parents=True)
        self.records: dict[str, tuple[NetRecord, str]] = {}
        self.claims: dict[str, str] = {}

    def get_or_claim(self, arch: str, owner: str) -> str:
        if arch in self.records:
            return "done"
        if self.claims.setdefault(arch, owner) != owner:
            return "busy"
        return "claimed"

    def put(self, record: NetRecord, weights: bytes) -> None:
        name = hashlib.sha1(f"{record.setting}\n{record.arch}".encode()).hexdigest() + ".pt"
        _atomic(self.weights_dir / name, lambda tmp: tmp.write_bytes(weights))
        self.records[record.arch] = (record, name)
        self.claims.pop(record.arch, None)
        rows = [{**dataclasses.asdict(r), "weights_file": w} for r, w in self.records.values()]
        table = pa.Table.from_pylist(rows, schema=SCHEMA)
        _atomic(self.table, lambda tmp: pq.write_table(table, tmp))  # the whole table, every time

    def weights(self, arch: str) -> bytes:
        return (self.weights_dir / self.records[arch][1]).read_bytes()


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def old_evaluate(pool: Any, arch: str, train: Callable[[], float], weights: bytes) -> bool:
    owner = uuid.uuid4().hex
    while True:
        status = ray.get(pool.get_or_claim.remote(arch, owner))
        if status == "done":
            return False
        if status == "claimed":
            break
        time.sleep(POLL_S)
    ray.get(pool.put.remote(NetRecord(arch, train(), 1, 0.0, "start", SETTING), weights))
    return True


@dataclasses.dataclass(frozen=True)
class Trained:
    """What `evaluate_once` expects a training to return."""

    val_accuracy: float
    epochs: int = 1
    seconds: float = 0.0


def new_evaluate(pool: Any, arch: str, train: Callable[[], float], weights: bytes) -> bool:
    return evaluate_once(pool, arch, lambda: Trained(train()), parent="start", setting=SETTING,
                         weights=lambda: weights)[1]


def run(kind: str, clients: int, archs: list[str], train_s: float, weights: bytes, seed: int) -> dict[str, float]:
    folder = tempfile.mkdtemp(prefix=f"bench-netpool-{kind}-")
    if kind == "old":
        pool = ray.remote(OldPool).options(num_cpus=0).remote(folder)
        evaluate, read = old_evaluate, lambda arch: ray.get(pool.weights.remote(arch))
    else:
        pool = netpool_actor(os.path.join(folder, "netpool.parquet"))
        evaluate, read = new_evaluate, lambda arch: call(pool, "weights", arch, SETTING)
    ray.get(pool.get_or_claim.remote("warm-up", "bench"))  # the actor is up before the clock starts
    put_began: dict[str, float] = {}  # arch -> when its trainer finished training and began the put
    puts: list[tuple[float, float]] = []  # (began, seconds) of every put
    woke: list[float] = []  # seconds from a put's start until a client that asked before it had the record

    def client(index: int) -> None:
        children = archs[1:]
        random.Random(seed * 1000 + index).shuffle(children)
        for arch in [archs[0], *children]:  # every client needs the start net first, as every env runner does
            asked = time.perf_counter()

            def train(arch: str = arch) -> float:
                time.sleep(train_s)
                put_began[arch] = time.perf_counter()
                return 0.5

            trained = evaluate(pool, arch, train, weights)
            done = time.perf_counter()
            if trained:
                puts.append((put_began[arch], done - put_began[arch]))
            elif asked < put_began[arch]:  # it waited for another client's training
                woke.append(done - put_began[arch])
            if arch == archs[0]:  # ... and loads the start net's weights
                assert len(read(arch)) == len(weights)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    ray.kill(pool)
    seconds = [s for _, s in sorted(puts)]
    assert len(seconds) == len(archs), f"{kind}: {len(seconds)} puts for {len(archs)} networks"
    return {"wall": wall, "requests_per_s": clients * len(archs) / wall, "put_ms": 1000 * statistics.median(seconds),
            "put_tail_ms": 1000 * statistics.median(seconds[-max(1, len(seconds) // 10):]),
            "waits": len(woke), "wake_ms": 1000 * statistics.median(woke) if woke else math.nan}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--archs", type=int, default=1000, help="distinct networks (each trained once)")
    parser.add_argument("--train-ms", type=float, default=20.0, help="training time of one network")
    parser.add_argument("--weights-kb", type=int, default=100, help="size of one network's weights")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    archs = [f"conv-{i}-3 pool fc-10" for i in range(args.archs)]
    weights = random.Random(args.seed).randbytes(args.weights_kb * 1024)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {args.archs} networks, "
          f"{args.train_ms:.0f} ms training, {args.weights_kb} KB weights and a {len(SETTING)}-character setting "
          "each")
    print("| clients | pool | wall (s) | requests/s | put ms (median) | put ms (last 10%) | waits | wake ms (median) |"
          "\n|---|---|---|---|---|---|---|---|")
    for clients in args.clients:
        for kind in ("old", "new"):
            r = run(kind, clients, archs, args.train_ms / 1000, weights, args.seed)
            print(f"| {clients} | {kind} | {r['wall']:.1f} | {r['requests_per_s']:.0f} | {r['put_ms']:.1f} "
                  f"| {r['put_tail_ms']:.1f} | {r['waits']} | {r['wake_ms']:.1f} |", flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main()
