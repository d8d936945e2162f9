"""dgm: the code behind the executable textbook on variational inference and VAEs.

This module only re-exports the homework's public names, so that ``from dgm import VAE2d``
works as students know it. Each name lives in the module named after its concept.
"""
