"""Watching an EAS search: the per-iteration report, console progress, TensorBoard scalars, the reward curve."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Protocol

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from rayneas.runs import report as run_report

REWARD_PNG = "reward_curve.png"


@dataclasses.dataclass(frozen=True)
class IterationReport:
    """What every watcher is told after an iteration is checkpointed; one object so they report the same numbers."""

    iteration: int  # iterations done, this one included
    networks_evaluated: int  # ... and in the whole search
    reward_mean: float  # mean episode return of this iteration's children
    val_acc_mean: float
    best_val_acc: float  # best child so far (NaN in reward.mode indicators: nothing is trained)
    best_reward: float  # highest reward so far, what the controller maximises in every mode
    best_arch: str
    netpool_hit_rate: float  # share of this iteration's children the NetPool already had
    seconds: float
    controller: dict[str, float]  # the learner's scalars (losses, entropy, baseline), empty for random search
    finished: bool = False

    def metrics(self) -> dict[str, Any]:
        """Flat values for Tune and TensorBoard."""
        return {"iteration": self.iteration, "networks_evaluated": self.networks_evaluated,
                "reward_mean": self.reward_mean, "val_acc_mean": self.val_acc_mean,
                "best_val_acc": self.best_val_acc, "best_reward": self.best_reward, "best_arch": self.best_arch,
                "netpool_hit_rate": self.netpool_hit_rate, "iteration_seconds": self.seconds,
                "finished": self.finished, **{f"controller/{k}": v for k, v in self.controller.items()}}


class IterationCallback(Protocol):
    """Called after each iteration's checkpoint is written (so a Tune checkpoint taken here is complete)."""

    def __call__(self, report: IterationReport) -> None: ...


def controller_scalars(result: dict[str, Any]) -> dict[str, float]:
    """The finite numeric learner results of an RLlib iteration (module ``default_policy``)."""
    learner = result.get("learners", {}).get("default_policy", {})
    return {k: float(v) for k, v in learner.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


class Progress:
    """A tqdm bar over the network budget: iteration, networks evaluated, best val_acc (best reward when no
    child is trained), ETA."""

    def __init__(self, budget: int, done: int, algorithm: str) -> None:
        self.bar = run_report.progress_bar(budget, "net", f"EAS ({algorithm})", initial=min(done, budget))

    def __call__(self, report: IterationReport) -> None:
        best = (f"best val_acc {report.best_val_acc:.4f}" if math.isfinite(report.best_val_acc)
                else f"best reward {report.best_reward:.3f}")
        self.bar.set_postfix_str(f"iteration {report.iteration}, {best}")
        self.bar.update(min(report.networks_evaluated, self.bar.total) - self.bar.n)

    def close(self) -> None:
        self.bar.close()


class Board(run_report.Board):
    """TensorBoard scalars per iteration in ``runs/<name>/tb``."""

    def __call__(self, report: IterationReport) -> None:
        # NaN: not measured (val_acc in reward.mode indicators), which tensorboardX would complain about
        self.scalars({tag if "/" in tag else f"search/{tag}": value for tag, value in report.metrics().items()
                      if isinstance(value, (int, float)) and not isinstance(value, bool) and tag != "iteration"
                      and math.isfinite(value)}, report.iteration)


def plot_rewards(run_dir: Path, networks: list[dict[str, Any]], title: str, by: str = "val_acc") -> Path:
    """``reward_curve.png`` of `reward_figure`."""
    path = Path(run_dir) / REWARD_PNG
    reward_figure(networks, title, by).savefig(path, dpi=120)
    return path


def reward_figure(networks: list[dict[str, Any]], title: str, by: str = "val_acc") -> Figure:
    """Each child's reward and the iteration mean; the best-so-far ``by`` (val_acc, or reward where nothing is
    trained: `rayneas.eas.record.best_key`) per network."""
    iterations = sorted({row["iteration"] for row in networks})
    means = [sum(r["reward"] for r in networks if r["iteration"] == i) /
             sum(1 for r in networks if r["iteration"] == i) for i in iterations]
    best, running = [], -math.inf
    for row in networks:
        running = max(running, row[by])
        best.append(running)
    fig = Figure(figsize=(9, 4), layout="constrained")  # no pyplot: no global backend state
    ax_r, ax_a = fig.subplots(1, 2)
    ax_r.scatter([r["iteration"] for r in networks], [r["reward"] for r in networks], s=8, alpha=0.4,
                 color="tab:gray", label="child")
    ax_r.plot(iterations, means, "o-", color="tab:blue", label="iteration mean")
    ax_r.set_xlabel("iteration")
    ax_r.set_ylabel("reward")
    ax_r.set_title("reward = tan(val_acc·π/2), or tan(quantile·π/2) for training-free\nrewards, "
                   "minus invalid-action penalties", fontsize=7)
    ax_r.legend(fontsize=7)
    ax_a.plot(range(1, len(best) + 1), best, color="tab:red")
    ax_a.set_xlabel("networks evaluated")
    ax_a.set_ylabel("best val_acc so far" if by == "val_acc" else f"best {by} so far")
    ax_a.set_title("best child so far" + (" (validation accuracy)" if by == "val_acc" else ""), fontsize=7)
    for ax, last in ((ax_r, iterations[-1] if iterations else 1), (ax_a, max(len(best), 1))):
        ax.grid(alpha=0.3)
        # Iterations and networks are counts: whole-number ticks, at least one (a single iteration would
        # otherwise get matplotlib's 0.95-1.05 span and fractional ticks only).
        ax.set_xlim(0.5, last + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    fig.suptitle(title, fontsize=8)
    return fig
