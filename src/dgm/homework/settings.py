"""The checks of the training settings a student chooses, against the homework's limits.

The homework's Task 2 asks for ``EPOCHS < 10`` and ``LR < 1e-2``; Task 3 for ``EPOCHS < 16``,
``LR < 1e-3``, ``128 < N_LATENS < 1024`` and ``0.1 < BETA < 10``. A candidate is a mapping of the
names to the values (a notebook passes ``globals()``).
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real

from dgm.homework.diagnose import fail

#: name -> (kind, low, high, the homework's comment): kind "int", "float" or "sizes" (a list of ints);
#: low and high are exclusive bounds, None for none.
LIMITS_2D = {
    "ENC_HIDDEN_SIZES": ("sizes", None, None, "a list of layer sizes"),
    "DEC_HIDDEN_SIZES": ("sizes", None, None, "a list of layer sizes"),
    "BATCH_SIZE": ("int", 0, None, "any adequate value"),
    "EPOCHS": ("int", 0, 10, "< 10"),
    "LR": ("float", 0, 1e-2, "< 1e-2"),
}
LIMITS_CIFAR10 = {
    "BATCH_SIZE": ("int", 0, None, "any adequate value"),
    "EPOCHS": ("int", 0, 16, "< 16"),
    "LR": ("float", 0, 1e-3, "< 1e-3"),
    "N_LATENS": ("int", 128, 1024, "128 < _ < 1024"),
    "BETA": ("float", 0.1, 10, "0.1 < _ < 10"),
}
#: Values within the limits, used where a student's choice failed its check (carry on).
REFERENCE_2D = {
    "ENC_HIDDEN_SIZES": [32, 32],
    "DEC_HIDDEN_SIZES": [32, 32],
    "BATCH_SIZE": 128,
    "EPOCHS": 9,
    "LR": 3e-3,
}
REFERENCE_CIFAR10 = {"BATCH_SIZE": 128, "EPOCHS": 10, "LR": 5e-4, "N_LATENS": 256, "BETA": 1.0}


def check_limits(name: str, candidate: Mapping, limits: dict) -> None:
    """Each of ``limits``' names in ``candidate`` of its kind and within its bounds."""
    if not isinstance(candidate, Mapping):
        fail(
            name,
            f"expected the settings as a mapping of names to values (globals()), got "
            f"{type(candidate).__name__}",
        )
    for key, (kind, low, high, comment) in limits.items():
        value = candidate.get(key)
        if value is None:
            fail(name, f"{key} is not set: choose a value ({comment})")
        if kind == "sizes":
            if not isinstance(value, list) or not all(type(v) is int and v > 0 for v in value):
                fail(name, f"{key} = {value!r} should be a list of positive integers, for example [32, 32]")
            continue
        ok = type(value) is int if kind == "int" else isinstance(value, Real) and not isinstance(value, bool)
        if not ok:
            fail(name, f"{key} = {value!r} should be {'an integer' if kind == 'int' else 'a number'}")
        if (low is not None and not value > low) or (high is not None and not value < high):
            bounds = " and ".join(
                ([f"greater than {low:g}"] if low is not None else [])
                + ([f"less than {high:g}"] if high is not None else [])
            )
            fail(name, f"{key} = {value!r} is outside the homework's limits: it must be {bounds} ({comment})")


def check_settings_2d(candidate: Mapping) -> None:
    """The Task 2 settings: hidden sizes, BATCH_SIZE, EPOCHS < 10, LR < 1e-2."""
    check_limits("settings_2d", candidate, LIMITS_2D)


def check_settings_cifar10(candidate: Mapping) -> None:
    """The Task 3 settings: BATCH_SIZE, EPOCHS < 16, LR < 1e-3, 128 < N_LATENS < 1024, 0.1 < BETA < 10."""
    check_limits("settings_cifar10", candidate, LIMITS_CIFAR10)
