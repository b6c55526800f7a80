"""Which models can be exported: whatever a method's export hook recognises.

A model reference is a trained network's name (a gallery style, a shipped GAN model, ``photoreal``,
``arbitrary``) or a ``.safetensors`` file. Export does not know the methods: it asks
:func:`huafeng.methods.export_graph`, which asks each method's ``export_graph`` hook in turn, and gets
back an :class:`ExportModel` (graph, torch reference, inputs, weights files, metadata, model card).
Adding a method edits nothing here.
"""
from __future__ import annotations

from ..methods import export_graph
from ..methods.graphs import ExportModel
from .graphs import size_free

__all__ = ["ExportModel", "load_model"]


def load_model(ref: str, ns_iters: int = 40) -> ExportModel:
    """The export-ready graph and torch reference of a model reference (see the module docstring).

    An image-to-image graph (one ``image`` input) that brings no fallbacks of its own gets one: the
    graph wrapped in :class:`~huafeng.export.graphs.SizeFree`, tried when the plain trace does not
    give torch's numbers at sizes it was not traced at (a Python branch on the size)."""
    model = export_graph(str(ref), ns_iters)
    if model.inputs == ("image",) and not model.fallbacks:
        graph = model.graph
        model.fallbacks = (lambda: size_free(graph).eval(),)
    return model
