"""Support modules of the Linux router lab (`vnf_operator.testing.netns`).

- `configs`: renders the configuration files of the lab's daemons (sshd, nftables, FRR, HAProxy).
- `echo_server`: the identity servers that run in the lab's backend namespace.
"""
