"""The EAS paper's meta-controller as an RLlib `TorchRLModule`: Bi-LSTM encoder, Wider and Deeper actors, value head.

The Deeper actor is autoregressive (block, then position given the block, then
kernel given the position), which RLlib's flat action distributions cannot
sample. So the module samples inside `_forward_exploration` and returns
``actions`` and ``action_logp`` itself (RLlib's GetActions connector then skips
sampling). Every forward pass also returns ``action_dist_inputs``: the logits of
each decision *conditioned on the actions taken* (teacher forcing), laid out for
the Catalog's distribution of the env's Dict action space. The joint log-prob of
the taken action is the sum of these conditional log-probs, so any RLlib learner
(PPO, APPO, IMPALA, REINFORCE) computes the right logp and entropy from them.

Decisions that do not count are pinned: the inactive phase's head, masked
choices and the kernel of a layer inserted where kernels mean nothing (after an
fc layer: an all-zero row of ``deeper_kernel_mask``, which the EAS code masks
out of its objective) get logits that put all mass on the taken (or forced)
value, so their log-prob and entropy are exactly 0 and the module never emits a
masked choice.
"""
from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from ray.rllib.core import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchMultiCategorical, TorchMultiDistribution
from ray.rllib.core.learner.utils import make_target_network
from ray.rllib.core.rl_module.apis.target_network_api import TARGET_NETWORK_ACTION_DIST_INPUTS, TargetNetworkAPI
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.torch.torch_rl_module import TorchRLModule
from torch import nn

EMBED = 16  # the paper's token embedding size
HIDDEN = 50  # Bi-LSTM units each way
NEG = -1e9  # logit of an impossible choice (finite: no NaN in softmax or entropy)


def _pinned(index: torch.Tensor, n: int) -> torch.Tensor:
    """Logits that put all mass on ``index``: log-prob 0, entropy 0."""
    return torch.where(nn.functional.one_hot(index, n).bool(), 0.0, NEG)


def _choose(logits: torch.Tensor, taken: torch.Tensor | None, greedy: bool) -> torch.Tensor:
    if taken is not None:
        return taken.long()
    if greedy:
        return logits.argmax(-1)
    return torch.distributions.Categorical(logits=logits).sample()


def dict_action_distribution(space: spaces.Dict) -> type:
    """The torch distribution of a Dict of MultiDiscrete actions, built from RLlib's public distribution classes
    (what RLlib's default Catalog would pick): one MultiCategorical per key, logits concatenated in the key order
    RLlib flattens a Dict in (sorted)."""
    children = {key: TorchMultiCategorical.get_partial_dist_cls(space=part, input_lens=[int(n) for n in part.nvec])
                for key, part in space.spaces.items()}
    return TorchMultiDistribution.get_partial_dist_cls(
        space=space, child_distribution_cls_struct=children,
        input_lens=[int(space.spaces[key].nvec.sum()) for key in sorted(space.spaces)])


class _Policy(nn.Module):
    """Every weight the actions depend on, in one module, so APPO's target network is one deep copy."""

    def __init__(self, num_tokens: int, num_blocks: int, num_positions: int, num_kernels: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_tokens, EMBED)
        self.encoder = nn.LSTM(EMBED, HIDDEN, batch_first=True, bidirectional=True)
        self.wider = nn.Linear(2 * HIDDEN, 1)  # shared over layers: sigmoid = P(widen layer i)
        self.decoder = nn.LSTMCell(EMBED, 2 * HIDDEN)
        self.start = nn.Parameter(torch.zeros(EMBED))
        self.block_out = nn.Linear(2 * HIDDEN, num_blocks)
        self.position_out = nn.Linear(2 * HIDDEN, num_positions)
        self.kernel_out = nn.Linear(2 * HIDDEN, num_kernels)
        self.block_embed = nn.Embedding(num_blocks, EMBED)
        self.position_embed = nn.Embedding(num_positions, EMBED)

    def encode(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """(per-layer features B x L x 100, the encoder's final state (h, c), each B x 100: forward and backward
        concatenated, as the EAS code hands it to the deeper decoder); packed by length so padding is never read."""
        lengths = obs["length"].long().clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(obs["arch"].long()), lengths, batch_first=True,
                                                   enforce_sorted=False)
        out, (h, c) = self.encoder(packed)
        features, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=obs["arch"].shape[1])
        return features, (torch.cat([h[0], h[1]], dim=-1), torch.cat([c[0], c[1]], dim=-1))


class EASController(TorchRLModule, ValueFunctionAPI, TargetNetworkAPI):
    """Observation: the EAS-v0 Dict (token ids, length, phase, masks); action: its Dict {"wider", "deeper"}.

    The kernel is masked by ``deeper_kernel_mask`` given the block and position
    (the DenseNet space forbids kernels smaller than the copied layer's); where
    that row is all zero (after an fc layer in the plain space) the kernel is no
    decision and is pinned to index 0.

    ``model_config={"uniform": True}`` makes every unmasked choice equally
    likely whatever the weights: the random-search baseline samples through the
    very same code, so both see the same masks and the same action layout.
    """

    def setup(self) -> None:
        super().setup()
        obs = self.observation_space
        self.num_blocks, self.num_positions = obs["deeper_position_mask"].shape
        self.num_kernels = int(self.action_space["deeper"].nvec[2])
        self.uniform = bool((self.model_config or {}).get("uniform", False))
        self.pi = _Policy(int(obs["arch"].high.max()) + 1, self.num_blocks, self.num_positions, self.num_kernels)
        self.value = nn.Linear(2 * HIDDEN + 2, 1)
        self.action_dist_cls = dict_action_distribution(self.action_space)
        self.action_keys = sorted(self.action_space.spaces)  # the distribution's flattening order of the Dict

    def _out(self, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        logits = layer(x)
        return torch.zeros_like(logits) if self.uniform else logits

    def _heads(self, obs: dict[str, torch.Tensor], taken: dict[str, torch.Tensor] | None,
               greedy: bool = False, pi: _Policy | None = None) -> dict[str, Any]:
        pi = pi or self.pi
        features, state = pi.encode(obs)
        deeper_phase = obs["phase"].long().bool()
        # Wider: one Bernoulli per layer as 2-way logits [0, s]; masked layers pinned to 0 (keep).
        score = self._out(pi.wider, features).squeeze(-1)
        wider_logits = torch.stack([torch.zeros_like(score), score], dim=-1)
        allowed = obs["wider_mask"].bool() & ~deeper_phase[:, None]
        wide = _choose(wider_logits, None if taken is None else taken["wider"], greedy)
        wide = torch.where(allowed, wide, 0)
        wider_logits = torch.where(allowed[..., None], wider_logits, _pinned(wide, 2))
        # Deeper: decoder LSTM from the encoder's final state, each choice fed back as the next input.
        batch = state[0].shape[0]
        given = None if taken is None else taken["deeper"].long()
        state = pi.decoder(pi.start.expand(batch, -1), state)
        block_logits = self._out(pi.block_out, state[0]).masked_fill(~obs["deeper_block_mask"].bool(), NEG)
        block = _choose(block_logits, None if given is None else given[:, 0], greedy)
        state = pi.decoder(pi.block_embed(block), state)
        rows = obs["deeper_position_mask"][torch.arange(batch), block].bool()
        position_logits = self._out(pi.position_out, state[0]).masked_fill(~rows, NEG)
        position = _choose(position_logits, None if given is None else given[:, 1], greedy)
        state = pi.decoder(pi.position_embed(position), state)
        kernels = obs["deeper_kernel_mask"][torch.arange(batch), block, position].bool()
        kernel_logits = self._out(pi.kernel_out, state[0]).masked_fill(~kernels, NEG)
        kernel = _choose(kernel_logits, None if given is None else given[:, 2], greedy)
        free = kernels.any(-1)  # False: the new layer has no kernel (after an fc layer); the choice is no decision
        kernel = torch.where(free, kernel, 0)
        kernel_logits = torch.where(free[:, None], kernel_logits, _pinned(kernel, self.num_kernels))
        deep = torch.stack([block, position, kernel], dim=-1)
        deep = torch.where(deeper_phase[:, None], deep, 0)
        parts = [(block_logits, self.num_blocks), (position_logits, self.num_positions),
                 (kernel_logits, self.num_kernels)]
        deeper_logits = [torch.where(deeper_phase[:, None], logits, _pinned(deep[:, i], n))
                         for i, (logits, n) in enumerate(parts)]
        inputs = {"wider": wider_logits.flatten(1), "deeper": torch.cat(deeper_logits, dim=-1)}
        actions = {"wider": wide, "deeper": deep}
        return {Columns.ACTIONS: actions, Columns.ACTION_DIST_INPUTS: torch.cat([inputs[k] for k in self.action_keys], -1)}

    def _with_logp(self, out: dict[str, Any]) -> dict[str, Any]:
        dist = self.action_dist_cls.from_logits(out[Columns.ACTION_DIST_INPUTS])
        return {**out, Columns.ACTION_LOGP: dist.logp(out[Columns.ACTIONS])}

    def _forward_inference(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self._with_logp(self._heads(batch[Columns.OBS], None, greedy=True))

    def _forward_exploration(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self._with_logp(self._heads(batch[Columns.OBS], None))

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Teacher-forced on the taken actions: the learner's logp/entropy are those of what was done."""
        return self._heads(batch[Columns.OBS], batch[Columns.ACTIONS])

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        obs = batch[Columns.OBS]
        _, (summary, _) = self.pi.encode(obs)
        phase = torch.stack([obs["phase"].float(), obs["step"].float()], dim=-1)
        return self.value(torch.cat([summary, phase], dim=-1)).squeeze(-1)

    def get_inference_action_dist_cls(self) -> Any:
        return self.action_dist_cls

    def get_exploration_action_dist_cls(self) -> Any:
        return self.action_dist_cls

    def get_train_action_dist_cls(self) -> Any:
        return self.action_dist_cls

    def make_target_networks(self) -> None:
        self._old_pi = make_target_network(self.pi)

    def get_target_network_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.pi, self._old_pi)]

    def forward_target(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The target policy's logits of the taken actions (APPO's KL and its clipped ratio need them)."""
        out = self._heads(batch[Columns.OBS], batch[Columns.ACTIONS], pi=self._old_pi)
        return {TARGET_NETWORK_ACTION_DIST_INPUTS: out[Columns.ACTION_DIST_INPUTS]}
