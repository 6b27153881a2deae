"""Training stages: supervised fine-tuning, pseudo-label distillation, reflective correction."""
