"""Helper tools: installing and running etcd for tests, benchmarks and development."""
