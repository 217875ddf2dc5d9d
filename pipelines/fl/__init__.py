"""Federated-learning client partitions in the CreamFL layout (image-only, text-only and image-text clients plus a
public image-text set), built from an ingest folder; `partition.py` is the entry module, `loader.py` the client side.
"""
