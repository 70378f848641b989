"""`dove train`: the two-stage latent-pixel fine-tune of DOVE (SPEC.md section 2)."""
