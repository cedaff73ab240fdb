"""Fault-injection harnesses for the hub: SIGKILL at random and named points (`crash`), a filesystem that fills up
or refuses writes (`disk`), and several processes at once on one catalog (`concurrency`)."""
