"""vnf_operator.controller."""
