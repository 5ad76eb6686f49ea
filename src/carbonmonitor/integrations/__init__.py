"""Framework integrations: callbacks that measure training with carbonmonitor.

Each lives in its own module and imports its framework only there (docs/integrations.md):

* ``carbonmonitor.integrations.lightning.CarbonMonitorCallback`` (``carbonmonitor[lightning]``)
* ``carbonmonitor.integrations.keras.CarbonMonitorCallback`` (``carbonmonitor[keras]``)
* ``carbonmonitor.integrations.transformers.CarbonMonitorCallback``
  (``carbonmonitor[transformers]``)
* ``carbonmonitor.integrations.torch.TrainingMonitor``: a hand-written loop (any framework)

Sinks that send the figures to MLflow, TensorBoard and W&B, and the model card's
``co2_eq_emissions``, are in ``mlflow``, ``tensorboard``, ``wandb`` and ``model_card``
(docs/sinks.md).

Importing this package imports no framework.
"""
