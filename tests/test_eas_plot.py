"""The EAS reward curve reads at a glance: short axis labels and whole-number iteration and network ticks."""
from __future__ import annotations

import pytest

from rayneas.eas.report import plot_rewards, reward_figure


def children(iterations: int, per_iteration: int = 3) -> list[dict]:
    return [{"iteration": i, "reward": 5.0 + i + 0.1 * k, "val_acc": 0.8 + 0.01 * (i + k)}
            for i in range(1, iterations + 1) for k in range(per_iteration)]


def visible_ticks(ax) -> list[float]:
    low, high = ax.get_xlim()
    return [t for t in ax.get_xticks() if low <= t <= high]


@pytest.mark.parametrize("iterations", [1, 4, 30])
def test_ticks_are_whole_iterations_and_networks(iterations):
    fig = reward_figure(children(iterations), "EAS on digits")
    rewards, best = fig.axes
    for ax, last in ((rewards, iterations), (best, 3 * iterations)):
        ticks = visible_ticks(ax)
        assert ticks and all(float(t).is_integer() for t in ticks)
        assert ax.get_xlim()[0] < 1 and ax.get_xlim()[1] > last  # every point is inside the axis
    if iterations == 1:
        assert visible_ticks(rewards) == [1]  # not 0.95, 0.975, 1.0, ...


def test_labels_are_short_and_the_formula_is_in_the_title(tmp_path):
    fig = reward_figure(children(2), "EAS on digits", by="reward")
    rewards, best = fig.axes
    assert rewards.get_ylabel() == "reward" and "tan(val_acc·π/2)" in rewards.get_title()
    assert best.get_ylabel() == "best reward so far"
    assert reward_figure(children(2), "EAS on digits").axes[1].get_ylabel() == "best val_acc so far"
    assert plot_rewards(tmp_path, children(2), "EAS on digits").stat().st_size > 0
