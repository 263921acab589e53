"""Embedded adapters: the one-machine defaults behind each port (ARCHITECTURE §4).

Imported lazily through services.backends.registry; nothing here needs a server.
"""
