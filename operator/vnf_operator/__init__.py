"""vnf_operator."""
