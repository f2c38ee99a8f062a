"""vnf_operator.testing."""
