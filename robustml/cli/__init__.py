"""The console scripts, one module each; :mod:`robustml.cli.errors` is what they share.

- ``robustml-train`` (:mod:`robustml.cli.train`), ``robustml-clean`` (:mod:`robustml.cli.clean`),
  ``robustml-features`` (:mod:`robustml.cli.features`), ``robustml-collect``
  (:mod:`robustml.cli.collect`), ``robustml-audit`` (:mod:`robustml.cli.audit`).

They register the config resolvers (:mod:`robustml.cli.errors`) and turn errors into one line.
"""
