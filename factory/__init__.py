"""Generators of the pack's artifacts (plain Python + torch; ComfyUI only where its own classes
build a file's layout):

* ``checkpoints``: tiny random checkpoints in the exact on-disk formats users download, and the
  demo's files; used by the demo, the tests and the benchmarks.
* ``workflows``: the shipped example workflows as compact specs, built into ``workflows/*.json``
  (``python tempo.py build-workflows``).
"""
