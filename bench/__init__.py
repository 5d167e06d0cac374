"""JetGate's own benchmark: a fast fake upstream, a load generator and a runner that
measures direct-to-upstream against through-the-gateway in one run (`python -m bench.run`)."""
