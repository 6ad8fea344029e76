"""robustml's Hydra configs (installed as ``robustml.configs``).

Importing the package, as Hydra's ``initialize_config_module`` does, registers the ``${run_name:}``
resolver that ``train.yaml`` and the experiment files use for their run names.
"""

from robustml.pipeline.naming import register_run_name_resolver

register_run_name_resolver()
