"""vnf_operator.broker."""
