"""vnf_operator.transport."""
