"""Tabular benchmark backends: answer an architecture's accuracy and cost by lookup."""
