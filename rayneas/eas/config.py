"""Config of EAS: the env sections (`EASEnvConfig`) and a whole run (`EASConfig`, ``kind: eas``).

Training and noise defaults are the paper's: children trained 20 epochs with
SGD (Nesterov 0.9, lr 0.02 cosine, wd 1e-4, batch 64), Net2Net noise 0.01
(wider) / 0.001 (deeper). The start net is trained apart (section ``start``)
until it has converged, as the EAS code ships converged start nets, so that a
child's reward measures its architecture and not its extra training. The ``space`` section picks the search space with
``kind`` (`rayneas.eas.space`): ``plain`` (default) or ``densenet``. The plain
space defaults to the EAS code's digits demo (start net and small width
lists), because digits is the default dataset; CIFAR-10 wants the paper-scale
lists (`PAPER_*` in `rayneas.spaces.plain`), given in the config.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Literal

from rayneas.config import spec, to_dict
from rayneas.data.idx import DEBIAN_FASHION_MNIST, fashion_fix
from rayneas.eas.space import DenseNetSpaceConfig, PlainSpaceConfig  # the space sections live with their adapters
from rayneas.storage import resolve

START_EPOCHS, START_LR = 200, 0.02  # the digits start net's plateau (docs/eas_env.md, "A converged start net")


@dataclasses.dataclass
class TrainConfig:
    """How `train_child` trains a network: SGD (momentum, Nesterov, weight decay), lr annealed to 0 by a
    per-step cosine over ``epochs``. The ``start`` section is one; a child's comes from `ChildTrainConfig`."""

    epochs: int = spec(START_EPOCHS, ge=0, doc="training epochs of the start net, from its init, once per run "
                                                "(docs/eas_env.md: a plateau of its validation curve)")
    lr: float = spec(START_LR, gt=0, doc="initial learning rate, annealed to 0 by a per-step cosine (the EAS "
                                         "code's CIFAR start nets: 0.1; on digits 0.1 trains unstably: "
                                         "docs/eas_env.md)")
    momentum: float = spec(0.9, ge=0, le=1)
    nesterov: bool = True
    weight_decay: float = spec(1e-4, ge=0)
    batch_size: int = spec(64, ge=1)


@dataclasses.dataclass
class ChildTrainConfig:
    """A child's fine-tuning from its parent's weights (the EAS code's ``arch_search_run_config``)."""

    MOVED_KEYS: ClassVar[dict[str, str]] = {
        key: f"the start net's training has its own section now: set start.{key} (child.finetune_{key} is each "
             "child's)" for key in ("epochs", "lr")}

    finetune_epochs: int = spec(20, ge=0, doc="epochs a child is trained from its parent's weights before it is "
                                              "scored (paper: 20)")
    finetune_lr: float = spec(0.02, gt=0, doc="initial lr of that fine-tuning; a restarted large lr can push a "
                                              "morphed child below its parent (docs/eas_env.md)")
    momentum: float = spec(0.9, ge=0, le=1)
    nesterov: bool = True
    weight_decay: float = spec(1e-4, ge=0)
    batch_size: int = spec(64, ge=1)

    def finetune(self) -> TrainConfig:
        """The settings `train_child` gets for fine-tuning a child."""
        return TrainConfig(epochs=self.finetune_epochs, lr=self.finetune_lr, momentum=self.momentum,
                           nesterov=self.nesterov, weight_decay=self.weight_decay, batch_size=self.batch_size)


@dataclasses.dataclass
class MorphNoiseConfig:
    """Gaussian noise on new weights, as the paper adds it to break the symmetry of copied units."""

    wider: float = spec(0.01, ge=0, doc="noise on widened replicas, as a fraction of the layer weights' std")
    deeper: float = spec(0.001, ge=0, doc="noise on a new identity layer, as a fraction of its weights' std")


NATIVE_SIZE = {"digits": 8, "cifar10": 32, "fashion_mnist": 28}  # image side as distributed


@dataclasses.dataclass
class DatasetConfig:
    """Where children train: the bundled digits, or CIFAR-10 / Fashion-MNIST as distributed (never downloaded)."""

    name: Literal["digits", "cifar10", "fashion_mnist"] = "digits"
    root: Path | None = spec(None, doc="CIFAR-10 folder (cifar-10-batches-py or its parent); Fashion-MNIST folder "
                                       "of its four IDX files (default: the Debian package's, "
                                       f"{DEBIAN_FASHION_MNIST}); digits are bundled")
    val_fraction: float | None = spec(None, gt=0, le=0.5, doc="share of the training images held out to score "
                                      "children; default 0.2 for digits (digits_split), 0.1 for CIFAR-10 "
                                      "(5,000 of 50,000, as EAS), 1/12 for Fashion-MNIST (5,000 of 60,000)")
    train_size: int | None = spec(None, ge=1, doc="the start net and the children train on this many of the "
                                                  "training images left after the validation split (a subset "
                                                  "drawn by the seed), for speed; null: all of them")
    image_size: int | None = spec(None, ge=1, doc="area-downsample the images to image_size x image_size (at most "
                                                  "the native size: digits 8, CIFAR-10 32, Fashion-MNIST 28), so "
                                                  "children train faster; null: native")

    def __post_init__(self) -> None:
        if self.name == "fashion_mnist" and self.root is None:
            if not DEBIAN_FASHION_MNIST.is_dir():
                raise ValueError(f"dataset.root: Fashion-MNIST's IDX files are not in {DEBIAN_FASHION_MNIST} (the "
                                 "default). " + fashion_fix("a folder and set dataset.root to it"))
            self.root = DEBIAN_FASHION_MNIST
        if self.name == "cifar10" and self.root is None:
            raise ValueError("dataset.root: CIFAR-10 needs the folder of its python-version batches; set "
                             "dataset.root (https://www.cs.toronto.edu/~kriz/cifar.html)")
        if self.name == "digits" and self.root is not None:
            raise ValueError("dataset.root: digits ship with scikit-learn and read no folder; remove dataset.root")
        if self.image_size is not None and self.image_size > NATIVE_SIZE[self.name]:
            raise ValueError(f"dataset.image_size: {self.image_size} exceeds the {NATIVE_SIZE[self.name]}-pixel "
                             f"images of {self.name}; downsampling only: set at most {NATIVE_SIZE[self.name]} or null")


@dataclasses.dataclass
class EpisodeConfig:
    wider_steps: int = spec(4, ge=0, doc="Net2Wider steps per episode, each deciding every layer at once")
    deeper_steps: int = spec(5, ge=0, doc="Net2Deeper steps after them, each inserting one identity layer")
    order: Literal["wider_first", "shuffled"] | None = spec(
        None, doc="wider_first (the paper's controller: all Net2Wider steps, then Net2Deeper), shuffled (the EAS "
                  "code's random search: the same steps in random order); null: shuffled for controller.algorithm "
                  "random, else wider_first")
    invalid_action: Literal["error", "noop"] = spec("noop", doc="a masked choice raises ValueError (error); or "
                                                    "(noop) a masked deeper choice leaves the network unchanged for "
                                                    "reward.invalid_penalty and a wider step's 1s on masked slots "
                                                    "are ignored, its other decisions applied")

    def __post_init__(self) -> None:
        if self.wider_steps + self.deeper_steps < 1:
            raise ValueError("wider_steps + deeper_steps must be at least 1: an episode needs a step")


RewardMode = Literal["train", "surrogate", "indicators", "hybrid"]
TRAIN_FREE_MODES: tuple[str, ...] = ("indicators", "hybrid")  # the modes that score children by indicators
#: The training-free indicators a child is scored by unless ``reward.indicators`` says otherwise (AZ-NAS's
#: three read the space's feature maps: `rayneas.eas.space.EASSpace.feature_modules`).
DEFAULT_INDICATORS: tuple[str, ...] = ("naswot", "az_expressivity", "az_progressivity", "az_trainability", "flops")


@dataclasses.dataclass
class RewardConfig:
    mode: RewardMode = spec("train", doc="train: fine-tune the final child and reward tan(val_acc * pi / 2) (the "
                                         "paper); indicators: no training, tan of the child's quantile among a "
                                         "fixed reference pool by training-free indicators; hybrid: train only "
                                         "children at or above train_quantile, the rest keep their inherited "
                                         "weights; surrogate: a cheap stand-in for tests (docs/eas_env.md)")
    invalid_penalty: float = spec(-1.0, le=0, doc="reward of a step whose masked action was a no-op")
    indicators: list[str] | None = spec(None, doc="indicators or hybrid mode: registered indicators a child is "
                                                  "ranked by; null: " + ", ".join(DEFAULT_INDICATORS))
    aggregate: Literal["rank_sum", "log_rank"] = spec("log_rank", doc="how the indicators' ranks combine: "
                                                      "log_rank (AZ-NAS) or rank_sum (TE-NAS)")
    reference_size: int = spec(32, ge=2, doc="random children of the start net (seeded by the run seed) that a "
                                             "child's indicators are ranked against")
    train_quantile: float = spec(0.8, gt=0, le=1, doc="hybrid mode: a child whose quantile among the reference "
                                                      "pool is at least this is fine-tuned; the others are not")

    def __post_init__(self) -> None:
        if self.mode not in TRAIN_FREE_MODES:
            if self.indicators is not None:
                raise ValueError(f"reward.indicators is read only in reward.mode indicators or hybrid, not "
                                 f"{self.mode}; remove reward.indicators or set reward.mode: indicators")
            return
        if self.indicators is None:
            self.indicators = list(DEFAULT_INDICATORS)
        check_reward_indicators(self.indicators)


def check_reward_indicators(names: list[str]) -> None:
    """Refuse what an EAS child cannot be scored by: unknown names, none, repeats, TE-NAS's thin-network
    indicator (its 1x3x3 crops have no counterpart in an EAS network) and indicators that need labels."""
    from rayneas.indicators import check_indicators, indicator_info

    check_indicators(names, "reward.indicators")
    unusable = [n for n in names if indicator_info(n).network == "thin" or indicator_info(n).inputs.labels]
    if unusable:
        raise ValueError(f"reward.indicators {unusable}: an EAS child is scored on itself with unlabelled training "
                         "images; these need TE-NAS's thin network or labels; remove them")


@dataclasses.dataclass
class EASEnvConfig:
    """Everything `rayneas/EAS-v0` needs; the controller sections come with the RL search."""

    seed: int = spec(0, doc="data split, start net init and training shuffles; episodes take reset(seed=...)")
    dataset: DatasetConfig = dataclasses.field(default_factory=DatasetConfig)
    space: PlainSpaceConfig | DenseNetSpaceConfig = spec(
        default_factory=PlainSpaceConfig, doc="the search space: kind plain (default) or densenet, its start net "
                                              "and width lists (rayneas.eas.space)")
    episode: EpisodeConfig = dataclasses.field(default_factory=EpisodeConfig)
    reward: RewardConfig = dataclasses.field(default_factory=RewardConfig)
    start: TrainConfig = spec(default_factory=TrainConfig, doc="how the start net is trained from its init, once "
                                                               "per run (cached in the NetPool)")
    child: ChildTrainConfig = dataclasses.field(default_factory=ChildTrainConfig)
    noise: MorphNoiseConfig = dataclasses.field(default_factory=MorphNoiseConfig)
    netpool: str | None = spec(None, doc="where evaluated networks are kept: a folder of Parquet records (weights "
                               "beside it in <name>.weights/), a local path or a URI (s3://, gs://, file://); none: "
                               "an in-memory pool per process, or per Ray job when Ray is initialized")
    device: str = spec("cpu", doc="torch device the networks train on")
    episode_log: str | None = spec(None, doc="the search's episode log in the NetPool: each finished episode's "
                                             "child (arch, val_acc, reward, NetPool hit) is logged under this "
                                             "name, where the EAS search collects it every iteration; none: "
                                             "not logged")


Algorithm = Literal["reinforce", "ppo", "appo", "impala", "random"]


@dataclasses.dataclass
class ControllerConfig:
    """What drives the search; `rayneas.rl.controller.controller_config` turns it into an RLlib config."""

    algorithm: Algorithm = spec("reinforce", doc="reinforce (the paper), ppo, appo, impala, or random (the "
                                                  "baseline: uniform valid transforms, nothing learned)")
    module: str = spec("bilstm", doc="bilstm (the paper's controller), default (RLlib's module on flattened "
                                     "observations) or package.module:Class of your own RLModule")
    networks_per_iteration: int = spec(10, ge=1, doc="child networks (whole episodes) per update (paper: 10)")
    num_env_runners: int = spec(2, ge=0, doc="Ray env runners sampling (and training children) in parallel; "
                                             "0 samples in the driver")
    rllib: dict[str, Any] = spec(default_factory=dict, doc="any other RLlib setting, passed to the algorithm "
                                                           "config, e.g. {lr: 0.001, clip_param: 0.1}")
    autoscaling: bool = spec(False, doc="the cluster adds nodes on demand (KubeRay, a cloud launcher): a "
                                        "controller whose actors do not fit the nodes alive now waits for "
                                        "them instead of failing")


@dataclasses.dataclass
class BudgetConfig:
    networks: int = spec(100, ge=1, doc="child networks to evaluate (NetPool hits included); the search stops "
                                        "after the iteration that reaches it")


@dataclasses.dataclass
class EASConfig(EASEnvConfig):
    """``kind: eas``: the env sections plus the run's name, controller and budget."""

    name: str = spec("eas", doc="run folder: runs/<name>/")
    controller: ControllerConfig = dataclasses.field(default_factory=ControllerConfig)
    budget: BudgetConfig = dataclasses.field(default_factory=BudgetConfig)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise ValueError(f"name {self.name!r} must be a plain folder name, e.g. eas_digits_seed0")

    def env_config(self, netpool: str, episode_log: str | None = None) -> dict[str, Any]:
        """The ``env_config`` RLlib hands every env runner: this config's env sections, logging episodes under
        ``episode_log`` (one name per search: searches that share a NetPool never collect each other's)."""
        env = {f.name: to_dict(getattr(self, f.name)) for f in dataclasses.fields(EASEnvConfig)}
        if env["episode"]["order"] is None:
            env["episode"]["order"] = "shuffled" if self.controller.algorithm == "random" else "wider_first"
        return {**env, "netpool": resolve(netpool), "episode_log": episode_log}
