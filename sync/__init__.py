"""Two-way, ID-mapped data sync of local models with Connec!."""
