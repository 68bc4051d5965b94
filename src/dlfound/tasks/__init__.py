"""LightningModules, one per learning problem. A task never knows which network it trains."""
