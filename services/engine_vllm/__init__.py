"""The vLLM engine service: the switchyard contract over one in-process vLLM ``AsyncLLM``."""
