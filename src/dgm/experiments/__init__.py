"""One module per chapter that computes, named after the chapter, each with the same contract.

- a frozen settings dataclass, and ``SETTINGS``: one instance per execution profile (a
  :class:`dgm.profiles.ByProfile`);
- ``run(settings, device=None, log=None) -> Result``: trains (or loads) and evaluates everything
  the chapter shows, each training recorded in the :class:`dgm.profiles.RunLog` ``log``;
- a frozen ``Result`` whose ``chapter_values()`` returns every number the chapter's text states,
  by its glue name.

Experiments import the core modules of :mod:`dgm` (and, where a chapter reuses another's trained
models, that chapter's experiment); nothing here imports :mod:`dgm.book`.
"""
