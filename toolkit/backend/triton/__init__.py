"""Remote backend: a model on a Triton Inference Server (``triton://host:port/model``) as a Runner."""
