"""fleet-sim: many simulated devices running the real agent core."""
