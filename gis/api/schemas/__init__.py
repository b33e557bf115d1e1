"""Request and response models, one module per concern (XCreate, XRead, XUpdate)."""
