"""Gymnasium environments of rayneas, installed as `rayneas_envs` (the EAS-v0 env registers here)."""
