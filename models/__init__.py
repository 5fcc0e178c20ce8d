"""Shipped models (importable as fer_pi.models so that installs find them as package data)."""
