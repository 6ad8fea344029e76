"""The console scripts, one module each; :mod:`robustml.cli.errors` is what they share.

- ``robustml-train`` (:mod:`robustml.cli.train`), ``robustml-clean`` (:mod:`robustml.cli.clean`),
  ``robustml-features`` (:mod:`robustml.cli.features`).
"""
