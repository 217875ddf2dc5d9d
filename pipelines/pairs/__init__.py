"""The image-text pair track (LAION, COYO, DataComp, CapsFusion-120M): its declaration for the registry."""
