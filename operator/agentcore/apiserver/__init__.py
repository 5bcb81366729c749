"""The API server: the Training JSON-RPC API over TrainingJob resources, with health, readiness and
Prometheus metrics endpoints.

``agentcore.apiserver.app.create_app`` builds the application, ``agentcore.apiserver.settings``
holds its configuration, ``agentcore.apiserver.cli`` is ``agentcore api``. (Nothing is imported
here, so that the console script starts fast.)
"""
