"""The HTTP front door: the seed's narrow API on the scoring runtime (``scoring``).

``POST /v1/score`` takes one event or a list of events and answers with what the consumer would
publish for them: a probability (one vectorised batch per request), or the violation the
dead-letter topic would carry, decided by the same ``scoring.decode``. The package only moves
requests and answers around the runtime; it never imports the Kafka adapter (``consumer``).
"""
