"""A rollout's lifecycle: every (state, event) -> state in one table. docs/operations.md shows the diagram
`mermaid()` draws from it (tests/server/test_docs.py keeps the two equal)."""

from __future__ import annotations

TRANSITIONS: dict[tuple[str, str], str] = {
    ("running", "pause"): "paused",  # operator
    ("paused", "resume"): "running",  # operator
    ("running", "abort"): "aborted",  # operator
    ("paused", "abort"): "aborted",  # operator
    ("running", "halt"): "halted",  # policy: a gate failed
    ("running", "complete"): "completed",  # policy: the last stage passed its gates
}
INITIAL = "running"
TERMINAL = frozenset({"halted", "completed", "aborted"})
# A rollout that may still touch devices: every state an event leaves. The one definition of "active".
ACTIVE: tuple[str, ...] = tuple(dict.fromkeys(s for (s, _e) in TRANSITIONS))


def next_state(state: str, event: str) -> str | None:
    return TRANSITIONS.get((state, event))


def sources(event: str) -> tuple[str, ...]:
    return tuple(s for (s, e) in TRANSITIONS if e == event)


def mermaid() -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {INITIAL}"]
    lines += [f"    {s} --> {t}: {e}" for (s, e), t in TRANSITIONS.items()]
    lines += [f"    {t} --> [*]" for t in sorted(TERMINAL)]
    return "\n".join(lines)
