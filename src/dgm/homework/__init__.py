"""The homework: its tasks, checks that tell a student what is wrong, and a grader.

``check(name, candidate)`` returns ``None`` when ``candidate`` (a function or class by its homework
name, for example ``check("VAE2d", VAE2d)``, or a task's settings as a mapping, for example
``check("settings_2d", globals())``) behaves like the book's, and raises ``AssertionError`` with a
message a student can act on when it does not: the homework's own asserts, then comparisons with the
reference on random inputs, and for the common mistakes, the mistake by its name. Messages never
show the reference's code.

The modules: :mod:`~dgm.homework.tasks` (the catalogue: :data:`TASKS`, :data:`PROBLEMS`),
:mod:`~dgm.homework.stubs_2d` and :mod:`~dgm.homework.stubs_cifar10` (the homework's cells as
students get them), the checks (:mod:`~dgm.homework.gaussians`, :mod:`~dgm.homework.nets`,
:mod:`~dgm.homework.models` on :mod:`~dgm.homework.probes`, :mod:`~dgm.homework.settings`, all on
the helpers of :mod:`~dgm.homework.diagnose`),
:mod:`~dgm.homework.notebook` (the check and carry-on cells) and :mod:`~dgm.homework.grade`
(``python -m dgm.homework grade NOTEBOOK.ipynb``, its child process in :mod:`~dgm.homework.child`).
"""

from __future__ import annotations

from dgm.homework.notebook import carry_on, report
from dgm.homework.tasks import PROBLEMS, TASKS, Problem, Task, check, task

__all__ = ["PROBLEMS", "TASKS", "Problem", "Task", "carry_on", "check", "report", "task"]
