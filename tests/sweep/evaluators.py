"""Evaluators for the engine's tests: cheap, deterministic, and they log every call."""

import time
from pathlib import Path


def logged_product(point: dict) -> dict:
    """Records the call in ``point["log"]`` (one line per evaluation), sleeps ``point["delay"]``."""
    with open(point["log"], "a") as f:
        f.write(f"{point['weights']},{point['acts']}\n")
    time.sleep(point.get("delay", 0.0))
    return {"metric": point["weights"] * 10 + point["acts"], "cost": point["weights"] * point["acts"]}


def failing(point: dict) -> dict:
    raise RuntimeError(f"evaluation failed at {point}")


def not_a_dict(point: dict):
    return Path("x")
