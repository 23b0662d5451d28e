"""The live quality monitor: scores joined with their delayed outcomes, measured per build.

``python -m quality`` is a Kafka service of its own (docs/quality.md): it reads the scores topic
(and a shadow's), and the outcome topic, joins them by ``session_id`` under the rule of
``contract.join``, and exports the build's live figures beside the ones its manifest promised.
"""
