"""`make bench`: the suite's speed measured beside the raw limits of its database and broker, in one run.

Each section is a module runnable as `python -m bench.<section>`: it shows progress on stderr and prints one
JSON object as the last line of stdout. Sections run in their own processes so that none inherits another's
monkey-patching, connections or memory (the replay section's peak memory is its own process's).
"""
