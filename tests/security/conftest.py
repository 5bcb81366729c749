"""The red-team suite runs against the same real control plane, PostgreSQL, S3 and operator
process as the integration tests."""

from tests.integration.controllers.test_trainingjob import operator  # noqa: F401 - a fixture
