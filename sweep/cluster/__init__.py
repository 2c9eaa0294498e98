"""The machines: card labels a node declares, `sweep cluster head|join|status` (Ray nodes with
token auth), each model's placement by card and memory, and the checks that every store a sweep
uses answers before anything starts.

Imports spec/, trainers (the memory estimate) and ray; never tracking/, report/ or cli/.
"""
