"""Inverse-problem solvers that use a trained network as their prior (plug-and-play)."""
