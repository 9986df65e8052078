"""Gymnasium environments of rayneas, installed as `rayneas_envs`; importing it registers `rayneas/EAS-v0`.

``gymnasium.make("rayneas_envs:rayneas/EAS-v0", **env_config)`` imports this
package first, which is how a fresh process (an RLlib env runner) finds the id.
"""
import gymnasium

from rayneas_envs.eas import EASEnv

EAS_ENV_ID = "rayneas/EAS-v0"

if EAS_ENV_ID not in gymnasium.registry:
    gymnasium.register(EAS_ENV_ID, entry_point="rayneas_envs.eas:EASEnv")

__all__ = ["EAS_ENV_ID", "EASEnv"]
