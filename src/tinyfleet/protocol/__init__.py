"""The device protocol (docs/device-protocol.md) in Python, for the server and the simulator: payload records
(`records`), topic names (`topics`) and wire codes generated from the agent's C++ headers (`codes`)."""
