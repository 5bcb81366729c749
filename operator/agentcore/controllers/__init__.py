"""The operator: kopf handlers (thin) over a level-triggered TrainingJob reconciler."""
