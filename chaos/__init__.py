"""The chaos library, by Jepsen's roles: `faults` (nemeses), `clients` (workloads that record every operation),
`checkers` (history in, verdict out), `experiments` (steady state -> inject -> observe -> heal -> verify).

`history` is the shared record all roles speak. The layers (import-linter contracts in pyproject.toml):
experiments may import every role; faults, clients and checkers import only `history` and `topology`.
"""
