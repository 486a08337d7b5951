"""Chaos runs: scenarios (what goes wrong), invariants (what must still hold), the runner and its report."""
