"""Deep Photo Style Transfer: images, masks, extractors, losses, optimisation, metrics."""
