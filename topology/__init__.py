"""The system under test: images, compose stacks, health gates and typed handles (Jepsen's `db` role)."""
