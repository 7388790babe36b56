"""Inference every model shares: test mode's inputs and outputs (testmode.py)."""
