"""Staged rollouts, pure: the decision (policy.py), a rollout's lifecycle (states.py) and a device's part in one
(device_states.py). No clock, database or broker: workers/rollout_engine.py and services/ run them."""
