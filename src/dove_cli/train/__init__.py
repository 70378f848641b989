"""`dove train`: the two-stage latent-pixel fine-tune of DOVE (docs/SPEC.md section 2)."""
