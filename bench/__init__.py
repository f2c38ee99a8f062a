"""vnf-operator benchmarks (`make bench`); see bench/README.md."""
