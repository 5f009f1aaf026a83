"""Hand-written C copied into every bundle (package data)."""
