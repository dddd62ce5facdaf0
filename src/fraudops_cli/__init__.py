"""The composition root: the ``fraudops`` command line and the demo.

The only package that imports the core (:mod:`fraudops`) together with the app folders
(``pipelines``, ``services``, ``monitoring``) and wires them; the core never imports it.
"""
