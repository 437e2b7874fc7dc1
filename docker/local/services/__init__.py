"""The local stack's services, one module each: where it listens, how it starts, when it is ready
(`SERVICE`), and what other services or tests need from it."""
