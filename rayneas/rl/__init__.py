"""The EAS meta-controller on RLlib: the Bi-LSTM module, REINFORCE, and the algorithm map (docs/eas_controller.md)."""
