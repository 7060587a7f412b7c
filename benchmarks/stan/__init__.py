"""The Stan peer of the flagship benchmark (platform.stan, run with rstan)."""
