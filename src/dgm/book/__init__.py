"""What builds, exports or extends the book: the build with its execution cache (:mod:`.build`),
the notebook edition (:mod:`.edition`), the Colab and Binder buttons (:mod:`.colab`), the Sphinx
extension (:mod:`.sphinxext`) and ``glue`` for chapters that also run outside the build
(:mod:`.glue`). No core or experiment module imports this package, and a checkpoint's key does not
hash it: editing it retrains nothing.
"""
