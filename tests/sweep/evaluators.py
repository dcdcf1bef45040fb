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


def reads_checkpoint(point: dict) -> dict:
    """Like :func:`logged_product`, and adds the number in ``point["context"]["checkpoint"]``
    (a file a sweep keeps in its own folder, as the models' ``prepare`` do)."""
    with open(point["log"], "a") as f:
        f.write(f"{point['weights']},{point['acts']}\n")
    offset = int(Path(point["context"]["checkpoint"]).read_text())
    return {"metric": point["weights"] * 10 + point["acts"] + offset}
