"""vnf_operator.engine."""
