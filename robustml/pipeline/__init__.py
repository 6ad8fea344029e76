"""Orchestration: config -> objects -> one run. Hydra and OmegaConf live here (and in
:mod:`robustml.cli`) only.

:func:`robustml.pipeline.run.run` spells out a run's stages in order; :mod:`~.build` turns config
nodes into data, model, loss, optimizer and trainer; :mod:`~.stages` is the one mechanism for an
ERM stage (JTT's stage one, group inference's reference model): its config, cache key, lock and
the loader of finished runs. Each method is one module: :mod:`~.clean` (label cleaning),
:mod:`~.inferred` (group inference), :mod:`~.jtt`, the last-layer heads :mod:`~.dfr`,
:mod:`~.afr` and :mod:`~.dpe` (their shared step, base model and saved head: :mod:`~.heads`),
:mod:`~.audit`;
:mod:`~.labels` says which group labels a run used, :mod:`~.naming` names runs and
:mod:`~.sweep` summarizes a Hydra sweep.
"""
