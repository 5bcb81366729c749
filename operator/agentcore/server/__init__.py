"""The API server: the Training JSON-RPC API over TrainingJob resources, with health, readiness and
Prometheus metrics endpoints.

``agentcore.server.app.create_app`` builds the application, ``agentcore.server.settings``
holds its configuration, ``agentcore.server.cli`` is ``agentcore api``. (Nothing is imported
here, so that the console script starts fast.)
"""
