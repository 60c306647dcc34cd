"""The context service: layered contexts that services share."""
