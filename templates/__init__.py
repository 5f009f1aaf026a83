"""Jinja2 templates of every OpenCL kernel and every generated bundle file (package data)."""
