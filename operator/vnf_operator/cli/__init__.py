"""vnf_operator.cli."""
