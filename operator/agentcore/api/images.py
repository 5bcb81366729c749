"""Container images the operator runs, shared by the controllers and the export runtime.

Kept beside the API types (not in the controller package) so that the export pods, which ship in
the same image, can name it without importing the operator's controllers.
"""

from __future__ import annotations

DEFAULT_TRAINER_IMAGE = "ghcr.io/agentcore/agentcore-training:0.1.0"
"""The trainer image; export pods run the exporter from it too."""
