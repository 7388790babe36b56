"""Training: the one loop every model's training runs in (loop.py) and the adversarial models' common base."""
