"""The transport-free scoring runtime: decode -> score, the model gates, drift and shadow.

Every front door (``consumer``: Kafka; ``serve``: HTTP) is a thin adapter over this package;
nothing here imports a transport.
"""
