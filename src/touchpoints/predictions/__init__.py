"""Predictions: lifetime value from each person's purchases (BG/NBD for how often they
buy again and whether they are still a customer, Gamma-Gamma for how much)."""
