"""The llama.cpp engine service: the switchyard contract over a ``llama-server`` child."""
