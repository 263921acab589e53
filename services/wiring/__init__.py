"""Wiring: how services, adapters and the control plane's agent are put together.

`monolith` (one process, `flarectl up`), `split` (one process per service, supervised),
`process` (what `python -m services.<name>` runs), `discovery` and `discovered` (clients
that find their peers in the topology). This is the only floor of `services` that imports
`controlplane`; the services below it know only ports and each other's clients.
"""
