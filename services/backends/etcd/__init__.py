"""etcd v3 adapters (production ConfigStore)."""
