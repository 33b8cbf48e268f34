"""The chip agent: an embeddable asyncio UDP responder over :mod:`protocol`."""

from __future__ import annotations

from chiploc.chip_agent._agent import AgentLimits, ChipAgent

__all__ = ["AgentLimits", "ChipAgent"]
