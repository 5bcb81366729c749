"""Container images the operator starts by default (the trainer image also ships the exporter)."""

DEFAULT_TRAINER_IMAGE = "ghcr.io/agentcore/agentcore-training:0.1.0"
