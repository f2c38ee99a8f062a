"""vnf_operator.k8s."""
