"""How fast a run notices that the worker running one of its calls has died."""

from datetime import timedelta

__all__ = ["CALL_HEARTBEAT_TIMEOUT"]

CALL_HEARTBEAT_TIMEOUT = timedelta(seconds=3)
"""Heartbeat timeout of model and tool calls (the worker heartbeats for them, see
`worker/heartbeats.py`): a killed worker's call is retried elsewhere this soon, however
long its start-to-close timeout. Long enough that a busy but live worker is not taken for
dead (the SDK sends a heartbeat at most every 80 % of it)."""
