"""Zero-cost sampling search: score N random cells with training-free indicators, keep the best by aggregate.

The cells are drawn from ``seed`` (NAS-Bench-201: a seeded permutation of
its 15,625 cells, so N cells are distinct and the first N of a larger N are
the same; DARTS: per node two distinct inputs and an op each, none excluded).
Each (cell, repeat) is one task on the `ScorerPool`, scored by the
`TenasScorer` TE-NAS uses (`rayneas.scoring.supernet`) on the networks each indicator's registration names (the κ
network and the thin network masked to the cell, the evaluation-size
supernet masked to it), so a cell scores as it would in a pruning search.
All tasks go to the pool in one call: every actor gets a new task the moment
it returns one, so none idles until fewer tasks than actors are left.

Scored cells are written to ``cells.parquet`` every ``sample.save_every``
cells; ``resume=True`` scores only the cells missing from it. When all are
scored, the indicators are aggregated over all N cells (`aggregate`, infinite
values of degenerate cells ranked last) and ``result.json`` names the best;
NAS-Bench-201 accuracies are looked up only then, never while scoring.
"""
from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rayneas.config import RunKind
from rayneas.indicators import aggregate, best_first
from rayneas.runs import report
from rayneas.runs.files import write_json_atomic, write_parquet_atomic
from rayneas.runs.folder import RunDirError, RunFolder, read_json
from rayneas.runs.settings import check_resumable, inputs_digest
from rayneas.scoring import ScorerPool, ensure_ray
from rayneas.scoring.config import result_settings
from rayneas.scoring.supernet import Score, ScoreTask, TenasScorer, init_seeds, mean_over_repeats, shared_inputs
from rayneas.spaces import darts, nb201
from rayneas.spaces.mask import Mask
from rayneas.spaces.prunable import SEARCH_OPS, PrunableSpace, make_space
from rayneas.zero_cost.config import ZeroCostConfig

STATE, CELLS = "state.json", "cells.parquet"
TOP = 10  # cells listed in result.json


@dataclasses.dataclass(frozen=True)
class Cell:
    position: int  # in the seeded sample
    genotype: str  # the space's text form
    mask: Mask  # what makes the supernets compute it (an NB201 `none` edge: no live op)
    nb201_index: int | None = None


def sample_cells(cfg: ZeroCostConfig) -> list[Cell]:
    """The first ``sample.cells`` cells of the seeded sample."""
    rng = np.random.default_rng(cfg.seed)
    if cfg.space == "nb201":
        cells = []
        for k, index in enumerate(rng.permutation(nb201.NUM_ARCHS)[:cfg.sample.cells]):
            genotype = nb201.from_index(int(index))
            mask = Mask.from_json({"cell": [[] if op == "none" else [op] for op in genotype.ops]})
            cells.append(Cell(k, genotype.to_string(), mask, int(index)))
        return cells
    return [_darts_cell(k, rng) for k in range(cfg.sample.cells)]


def _darts_cell(position: int, rng: np.random.Generator) -> Cell:
    ops = SEARCH_OPS["darts"]

    def edges() -> list[tuple[str, int]]:
        chosen = []
        for node in range(darts.STEPS):
            for state in sorted(rng.choice(node + 2, 2, replace=False)):
                chosen.append((ops[int(rng.integers(len(ops)))], int(state)))
        return chosen

    concat = list(range(2, darts.STEPS + 2))
    genotype = darts.Genotype(normal=edges(), normal_concat=concat, reduce=edges(), reduce_concat=concat)
    return Cell(position, darts.format_genotype(genotype), darts.mask_from_genotype(genotype))


def cell_tasks(cfg: ZeroCostConfig, cells: Sequence[Cell]) -> list[ScoreTask]:
    """One task per (cell, repeat); a cell's inits depend on its position and the repeat only."""
    tasks = []
    for cell in cells:
        for r in range(cfg.repeats):
            seeds = init_seeds(cfg.mode, cfg.seed, cell.position, r, candidate=None)
            tasks.append(ScoreTask(cell.mask, r, seeds.kappa, seeds.regions, f"cell {cell.position}, repeat {r}"))
    return tasks


def cell_row(cell: Cell, scores: Sequence[Score], indicators: Sequence[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"position": cell.position, "genotype": cell.genotype, "nb201_index": cell.nb201_index}
    for name in indicators:
        values = [float(s.value(name)) for s in scores]
        row[name], row[f"{name}_repeats"] = mean_over_repeats(values), values
    return row


def cells_schema(indicators: Sequence[str]) -> pa.Schema:
    fields = [("position", pa.int32()), ("genotype", pa.string()), ("nb201_index", pa.int32())]
    for name in indicators:
        fields += [(name, pa.float64()), (f"{name}_repeats", pa.list_(pa.float64()))]
    return pa.schema(fields + [("aggregate", pa.float64()), ("rank", pa.int32())])


def run_settings(cfg: ZeroCostConfig, digest: str) -> dict:
    """What decides each cell's numbers; ``sample`` is left out, so a resume may score more cells."""
    return result_settings(cfg, digest, cfg.indicators, ("name", "scoring", "sample"))


class CellStore(RunFolder):
    """``runs/<name>/``: state.json (settings, time spent), cells.parquet (scored cells), result.json."""

    def __init__(self, run_dir: Path, indicators: Sequence[str]) -> None:
        super().__init__(run_dir)
        self.schema = cells_schema(indicators)

    def start(self, cfg: ZeroCostConfig, resume: bool, digest: str) -> tuple[dict[int, dict], float]:
        """The rows scored already (by position) and the seconds spent on them; checks a resumed run's settings."""
        settings = run_settings(cfg, digest)
        state_path = self.dir / STATE
        if not resume:
            if state_path.is_file():
                raise self.already_holds("a zero-cost run", STATE)
            self.dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(state_path, {"settings": settings, "elapsed_s": 0.0})
            self.write_config(cfg)
            return {}, 0.0
        if not state_path.is_file():
            raise RunDirError(f"cannot resume: {state_path} does not exist; run without --resume to start")
        saved = read_json(state_path)
        check_resumable(self.dir, saved["settings"], settings)
        self.write_config(cfg)
        path = self.dir / CELLS
        rows = pq.read_table(path).to_pylist() if path.is_file() else []
        return {row["position"]: row for row in rows}, float(saved["elapsed_s"])

    def save(self, rows: dict[int, dict], elapsed_s: float) -> None:
        """The rows in sample order, then the time spent (so a crash between the two only undercounts)."""
        ordered = [rows[k] for k in sorted(rows)]
        write_parquet_atomic(self.dir / CELLS, pa.Table.from_pylist(ordered, schema=self.schema))
        state = read_json(self.dir / STATE)
        write_json_atomic(self.dir / STATE, {**state, "elapsed_s": elapsed_s})
        self.saved()


def _score_cells(pool: ScorerPool, tasks: list[ScoreTask], on_result: Callable[[int, Score], None]) -> None:
    """All tasks in one `ScorerPool.score` call (the pool keeps one in flight per actor until the list ends)."""
    pool.score(tasks, on_result=on_result)


def _check_sample(cells: Sequence[Cell], rows: dict[int, dict]) -> None:
    for k, row in rows.items():
        if k < len(cells) and row["genotype"] != cells[k].genotype:
            raise RunDirError(f"cells.parquet holds {row['genotype']} at position {k}, but the seed draws "
                              f"{cells[k].genotype} there; the file does not belong to this config")


def rank_cells(cfg: ZeroCostConfig, rows: list[dict]) -> list[int]:
    """Fill each row's ``aggregate`` and ``rank`` (0 = best); returns the positions best first."""
    values = aggregate(cfg.aggregate, {name: [row[name] for row in rows] for name in cfg.indicators},
                       candidates=[f"cell {row['position']} ({row['genotype']})" for row in rows], nonfinite="worst")
    order = best_first(cfg.aggregate, values)
    for rank, i in enumerate(order):
        rows[i]["aggregate"], rows[i]["rank"] = values[i], rank
    return order


def _result(cfg: ZeroCostConfig, rows: list[dict], order: list[int], elapsed_s: float) -> dict:
    """``result.json``; the NAS-Bench-201 accuracies are looked up here, after the scoring, never during it."""

    def brief(row: dict) -> dict:
        return {"position": row["position"], "genotype": row["genotype"], "aggregate": row["aggregate"],
                **({"nb201_index": row["nb201_index"]} if cfg.space == "nb201" else {}),
                "indicators": {name: row[name] for name in cfg.indicators}}

    best = rows[order[0]]
    result = {"space": cfg.space, "dataset": cfg.dataset, "seed": cfg.seed, "indicators": list(cfg.indicators),
              "aggregate": cfg.aggregate, "cells_scored": len(rows), "wall_time_s": elapsed_s,
              "genotype": best["genotype"], "best": brief(best), "top": [brief(rows[i]) for i in order[:TOP]]}
    if cfg.space == "nb201":
        from rayneas.lookup import lookup

        acc = lookup(best["genotype"])
        result["nb201_index"] = acc.index
        result["lookup"] = {"cifar10": acc.cifar10, "cifar100": acc.cifar100, "imagenet16": acc.imagenet16}
    return result


def run_zero_cost(cfg: ZeroCostConfig, run_dir: Path, resume: bool = False) -> dict:
    """Score (or, with ``resume``, finish scoring) the sample in ``run_dir``; returns what result.json holds."""
    started = time.perf_counter()
    space: PrunableSpace = make_space(cfg)
    cells = sample_cells(cfg)
    shared = shared_inputs(cfg, cfg.indicators)  # read the data first: a missing dataset fails before Ray starts
    store = CellStore(run_dir, cfg.indicators)
    rows, elapsed_before = store.start(cfg, resume, inputs_digest(shared))
    _check_sample(cells, rows)
    rows = {k: row for k, row in rows.items() if k < len(cells)}

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - started

    todo = [cell for cell in cells if cell.position not in rows]
    if todo:
        sc, repeats = cfg.scoring, cfg.repeats
        if sc.num_actors:
            ensure_ray()
        partial: dict[int, list[Score | None]] = {}
        bar = report.progress_bar(len(cells), "cell", "zero-cost cells", initial=len(rows))
        unsaved = [0]

        def on_result(index: int, score: Score) -> None:
            cell = todo[index // repeats]
            got = partial.setdefault(cell.position, [None] * repeats)
            got[index % repeats] = score
            if all(s is not None for s in got):
                rows[cell.position] = cell_row(cell, partial.pop(cell.position), cfg.indicators)
                bar.update(1)
                unsaved[0] += 1
                if unsaved[0] >= cfg.sample.save_every:
                    store.save(rows, elapsed())
                    unsaved[0] = 0

        factory = functools.partial(TenasScorer, space, cfg.mode, tuple(cfg.indicators))
        with ScorerPool(factory, shared=shared, **dataclasses.asdict(sc)) as pool:
            try:
                _score_cells(pool, cell_tasks(cfg, todo), on_result)
            finally:
                bar.close()
                store.save(rows, elapsed())  # what was scored, also when scoring failed or was interrupted
    ordered = [rows[k] for k in sorted(rows)]
    order = rank_cells(cfg, ordered)
    store.save({row["position"]: row for row in ordered}, elapsed())
    result = _result(cfg, ordered, order, elapsed())
    store.write_result(result)
    report.note(f"best of {len(ordered)} cells by {cfg.aggregate} over {', '.join(cfg.indicators)}: "
               f"{result['genotype']}")
    return {"run_dir": str(run_dir), **result}


RUN_KIND = RunKind("zero_cost", ZeroCostConfig, run_zero_cost)
