"""Staged rollouts: the pure decision (policy.py) and the engine around it (engine.py)."""
