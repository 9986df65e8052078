"""The start network (trained once per run) and the scoring of children, both through the NetPool.

Every episode starts from the same trained start network; training it in
each env or env runner would multiply the run's most expensive step, so the
first worker trains it and the pool hands its weights to the others. A child
is scored once per architecture and setting (`NetRecord.setting`, built
here from everything its score depends on); a network met again is looked up.

What a child's record holds, by ``reward.mode``: ``train``, its fine-tuned
validation accuracy (and weights); ``hybrid``, the same for a child whose
reference quantile (`rayneas.eas.trainfree`) reaches ``reward.train_quantile``,
else the validation accuracy of the weights it inherited (and those
weights); ``indicators``, the quantile itself in the accuracy column: nothing
is trained, so the child's val_acc is NaN and its reward tan(quantile · π/2).
"""
from __future__ import annotations

import dataclasses
import io
import json
import math
from typing import Any, Callable

import torch

from rayneas.config import to_dict
from rayneas.data.arrays import DataError
from rayneas.eas.config import TRAIN_FREE_MODES, EASEnvConfig
from rayneas.eas.data import ChildData, load_child_data
from rayneas.eas.nodes import missing_here
from rayneas.eas.netpool import Evaluation, NetRecord, call, connect, evaluate_once
from rayneas.eas.reward import UntrainedResult, surrogate_accuracy, tan_reward
from rayneas.eas.space import eas_space
from rayneas.eas.trainfree import ReferenceQuantile
from rayneas.eas.train import accuracy, train_child


def state_bytes(net: torch.nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    return buffer.getvalue()


def load_state(net: torch.nn.Module, data: bytes) -> None:
    net.load_state_dict(torch.load(io.BytesIO(data), map_location=next(net.parameters()).device, weights_only=True))


def _child_data(cfg: EASEnvConfig) -> ChildData:
    """The child data, or a `DataError` naming this node: an env runner on a node that joined after the run's
    check (`rayneas.eas.nodes`, e.g. added by an autoscaler) reads ``dataset.root`` there, where it may not exist."""
    try:
        return load_child_data(cfg.dataset, cfg.seed)
    except DataError as exc:
        raise DataError(missing_here(cfg.dataset, exc)) from None


@dataclasses.dataclass(frozen=True)
class Score:
    reward: float
    val_accuracy: float
    netpool_hit: bool  # the pool had this network: nothing was trained
    train_seconds: float  # spent training in this call (0 on a hit)


class ChildEvaluator:
    def __init__(self, cfg: EASEnvConfig) -> None:
        self.cfg = cfg
        self.space = eas_space(cfg.space)
        self.data = _child_data(cfg)
        self.pool = connect(cfg.netpool)
        self._start: tuple[bytes, float] | None = None
        self.trained_start = False  # this process trained the start net (every other one loads it)
        self.quantile = (ReferenceQuantile(cfg, self.space, self.data, self.setting("child"))
                         if cfg.reward.mode in TRAIN_FREE_MODES else None)

    def setting(self, role: str) -> str:
        """The NetPool setting of the start net (``start``) or of a child (``child``, ``surrogate``)."""
        cfg = self.cfg
        if role == "surrogate":
            return json.dumps({"role": role})  # a function of the architecture alone
        fields = {"role": role, "dataset": to_dict(cfg.dataset), "seed": cfg.seed}
        if role == "start":
            fields["train"] = to_dict(cfg.start)
        else:  # a child's score also depends on its parent (and how it was trained) and on the transforms' noise
            fields.update(train=to_dict(cfg.child), start=to_dict(cfg.start), start_net=cfg.space.start_net,
                          noise=to_dict(cfg.noise))
        if role == "child" and cfg.reward.mode in TRAIN_FREE_MODES:
            # ... and on the indicators, and on the reference pool: its size and how its children grow
            reward = {k: v for k, v in to_dict(cfg.reward).items() if k != "invalid_penalty"}
            if cfg.reward.mode != "hybrid":
                del reward["train_quantile"]
            fields.update(reward=reward, space=to_dict(cfg.space), episode=to_dict(cfg.episode))
        return json.dumps(fields, sort_keys=True)

    def _fresh_start(self) -> torch.nn.Module:
        net = self.space.build(self.space.start(), self.data.in_channels, self.data.num_classes, seed=self.cfg.seed)
        return net.to(self.cfg.device)

    def start_network(self) -> tuple[torch.nn.Module, float | None]:
        """A new copy of the start network and its validation accuracy.

        Trained (section ``start``) once per run through the pool; the
        surrogate and indicators rewards ignore weights, so there it stays untrained (None).
        """
        net = self._fresh_start()
        if self.cfg.reward.mode in ("surrogate", "indicators"):
            return net, None
        if self._start is None:
            cfg = self.cfg
            record, self.trained_start = self._once(
                self.space.arch_string(net),
                lambda: train_child(net, self.data, cfg.start, seed=cfg.seed, device=cfg.device,
                                    augment=self.data.augment),
                setting=self.setting("start"), weights=lambda: state_bytes(net))
            weights = call(self.pool, "weights", record.arch, record.setting)
            if weights is None:
                raise RuntimeError(f"the NetPool ({cfg.netpool}) has a record of the start net {record.arch!r} but no "
                                   "weights; point netpool at a new file or delete that one")
            self._start = (weights, record.accuracy)
        load_state(net, self._start[0])
        return net, self._start[1]

    def _once(self, arch: str, evaluate: Callable[[], Evaluation], **kwargs: Any) -> tuple[NetRecord, bool]:
        """`evaluate_once` in this search's pool, its claims made for this search (its episode log's name)."""
        return evaluate_once(self.pool, arch, evaluate, group=self.cfg.episode_log or "", **kwargs)

    def log_episode(self, entry: dict) -> None:
        call(self.pool, "log_episode", self.cfg.episode_log, entry)

    def score(self, net: torch.nn.Module) -> Score:
        """Reward of a finished child (see the module's docstring for each ``reward.mode``), once per network."""
        cfg, space = self.cfg, self.space
        arch = space.arch_string(net)
        mode = cfg.reward.mode
        if mode == "surrogate":
            record, trained = self._once(
                arch, lambda: UntrainedResult(surrogate_accuracy(space.layers(net), space.grown)),
                parent=cfg.space.start_net, setting=self.setting("surrogate"))
        elif mode == "indicators":
            record, trained = self._once(arch, lambda: UntrainedResult(self.quantile(arch)),
                                            parent=cfg.space.start_net, setting=self.setting("child"))
            return Score(tan_reward(record.accuracy), math.nan, not trained, 0.0)
        else:
            evaluate = self._hybrid if mode == "hybrid" else self._finetune
            record, trained = self._once(arch, lambda: evaluate(net), parent=cfg.space.start_net,
                                            setting=self.setting("child"), weights=lambda: state_bytes(net))
        return Score(tan_reward(record.accuracy), record.accuracy, not trained, record.seconds if trained else 0.0)

    def _finetune(self, net: torch.nn.Module) -> Evaluation:
        cfg = self.cfg
        return train_child(net, self.data, cfg.child.finetune(), seed=cfg.seed, device=cfg.device,
                           augment=self.data.augment)

    def _hybrid(self, net: torch.nn.Module) -> Evaluation:
        """Fine-tuned if the child's reference quantile reaches ``reward.train_quantile``; else the accuracy of
        its inherited weights (Net2Net keeps the start net's function, so about the start net's accuracy)."""
        assert self.quantile is not None
        if self.quantile(self.space.arch_string(net)) >= self.cfg.reward.train_quantile:
            return self._finetune(net)
        return UntrainedResult(accuracy(net, self.data.x_val, self.data.y_val))
