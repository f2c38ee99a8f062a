"""vnf_operator.core."""
