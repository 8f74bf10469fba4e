"""The lexical engine: exact and MinHash near duplicates at corpus scale.

One algorithm, written as batch functions over arrays (`kernels`, `bands`, `verify`), that a
driver runs over a stream of record chunks (`local`: this machine, all cores, spilling to disk
under a memory budget). The hashing scheme is specified in `reference`.
"""
