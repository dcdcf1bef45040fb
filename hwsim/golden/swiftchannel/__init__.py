"""Goldens of the SwiftChannel int8 pipeline: the integer student, its conv, gate and composed pipeline."""
