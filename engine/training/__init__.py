"""Training: the Trainer and Runs, losses, optimizers and schedules, metrics, and the experiments
that look at training (mini-batches, 2-D surfaces, loss landscapes, margins, gradient flow)."""
